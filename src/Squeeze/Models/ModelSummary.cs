using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Models;

/// <summary>Parameters, bytes and types of a set of tensors.</summary>
/// <param name="Parameters">Elements across the tensors.</param>
/// <param name="Bytes">Bytes of tensor data (without padding).</param>
/// <param name="Types">Types used, with the number of tensors of each, most frequent first.</param>
public sealed record TensorGroupSummary(long Parameters, long Bytes, IReadOnlyList<KeyValuePair<GgmlType, int>> Types)
{
    /// <summary>Bits per weight: <c>8 * Bytes / Parameters</c> (0 for no parameters).</summary>
    public double BitsPerWeight => Parameters == 0 ? 0 : 8.0 * Bytes / Parameters;

    public static TensorGroupSummary Of(IEnumerable<GgufTensorInfo> tensors)
    {
        var list = tensors.ToList();
        var types = list.GroupBy(t => t.Type)
            .Select(g => new KeyValuePair<GgmlType, int>(g.Key, g.Count()))
            .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key)
            .ToList();
        return new(list.Sum(t => t.ElementCount), list.Sum(t => t.ByteSize), types);
    }
}

/// <summary>The totals of a GGUF model and the same per layer (<c>blk.N</c>), for <c>squeeze inspect</c> and reports.</summary>
public sealed record ModelSummary(TensorGroupSummary Totals, IReadOnlyList<(int Layer, TensorGroupSummary Summary)> Layers, TensorGroupSummary NonLayer)
{
    public static ModelSummary Of(IReadOnlyList<GgufTensorInfo> tensors)
    {
        var layers = tensors.Where(t => TensorName.LayerOf(t.Name) is not null)
            .GroupBy(t => TensorName.LayerOf(t.Name)!.Value)
            .OrderBy(g => g.Key)
            .Select(g => (g.Key, TensorGroupSummary.Of(g)))
            .ToList();
        return new(TensorGroupSummary.Of(tensors), layers, TensorGroupSummary.Of(tensors.Where(t => TensorName.LayerOf(t.Name) is null)));
    }
}
