using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Quants;

namespace Squeeze.Quantization.Planning;

/// <summary>Which types the planner may give a tensor.</summary>
public static class PlanCandidates
{
    /// <summary>
    /// Every type mainline llama.cpp loads and quantizes from float, from 1.56 to 16 bits per weight (the k-quants, the
    /// legacy 32-blocks, the i-quants, F16 and BF16). Ternary, MXFP4/NVFP4 and Q1_0/Q2_0 are left out: they are made
    /// for models trained for them.
    /// </summary>
    public static IReadOnlyList<GgmlType> Default { get; } =
    [
        GgmlType.IQ1_S, GgmlType.IQ1_M, GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S,
        GgmlType.IQ4_XS, GgmlType.IQ4_NL, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q4_K,
        GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_0, GgmlType.F16, GgmlType.BF16,
    ];

    /// <summary>Whether <paramref name="type"/> is an i-quant (a codebook type that is only good with importance weights).</summary>
    public static bool IsIQuant(GgmlType type) => type.Name().StartsWith("iq", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The candidates of <paramref name="tensor"/> among <paramref name="types"/>: Squeeze has the kernels, the block fits
    /// the row, and i-quants only with an imatrix (types ggml cannot quantize without weights only where the imatrix has
    /// the tensor). Types wider than the source (F16 from F16, BF16 from F16) are left out.
    /// </summary>
    public static IReadOnlyList<GgmlType> For(GgufTensorInfo tensor, IEnumerable<GgmlType> types, ImportanceMatrix? imatrix)
    {
        bool hasEntry = ErrorMeasurement.Importance(imatrix, tensor) is not null;
        var result = new List<GgmlType>();
        foreach (var type in types)
        {
            var kernel = QuantKernels.Find(type);
            if (kernel is null) continue;
            var traits = GgmlTypes.Get(type);
            if (tensor.Shape[0] % traits.BlockSize != 0) continue;
            if (IsIQuant(type) && imatrix is null) continue;
            if (kernel.RequiresImportance && !hasEntry) continue;
            if (ImatrixRequirement.Types.ContainsKey(type) && !hasEntry && !ImatrixRequirement.ExemptNames.Contains(tensor.Name)) continue;
            if (!traits.IsQuantized && GgmlTypes.Get(tensor.Type) is { IsQuantized: false } src && traits.BitsPerWeight >= src.BitsPerWeight && type != tensor.Type) continue;
            if (traits.IsQuantized && GgmlTypes.Get(tensor.Type).IsQuantized && traits.BitsPerWeight >= GgmlTypes.Get(tensor.Type).BitsPerWeight) continue;
            result.Add(type);
        }
        return result;
    }
}
