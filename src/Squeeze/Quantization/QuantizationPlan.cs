using System.Globalization;
using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Quantization;

/// <summary>What happens to one tensor, and why.</summary>
/// <param name="Tensor">The input tensor.</param>
/// <param name="TargetType">Its type in the output.</param>
/// <param name="Reason">Why it gets that type (for <c>--dry-run</c> and the summary).</param>
/// <param name="FellBack">Whether the row-size fallback changed the type.</param>
/// <param name="RequiresImatrix">Whether llama.cpp refuses to quantize it without importance weights.</param>
public sealed record TensorPlan(GgufTensorInfo Tensor, GgmlType TargetType, string Reason, bool FellBack, bool RequiresImatrix)
{
    /// <summary>Whether the data changes (false: the bytes are copied).</summary>
    public bool Converts => TargetType != Tensor.Type;

    /// <summary>Bytes in the output.</summary>
    public long OutputBytes => GgmlTypes.RowSize(TargetType, Tensor.Shape[0]) * Tensor.RowCount;
}

/// <summary>llama-quantize's options that also apply under <c>--pure</c>.</summary>
public sealed record PureOptions
{
    /// <summary>False for <c>--leave-output-tensor</c>: <c>output.weight</c> keeps its type.</summary>
    public bool QuantizeOutput { get; init; } = true;

    /// <summary><c>--output-tensor-type</c>: the type of <c>output.weight</c>, as given (no fallback).</summary>
    public GgmlType? OutputTensorType { get; init; }

    /// <summary><c>--token-embedding-type</c>: the type of the token embeddings, as given (no fallback).</summary>
    public GgmlType? TokenEmbeddingType { get; init; }
}

/// <summary>
/// The type of every tensor of a model, in the order llama.cpp writes them. Built by <see cref="Pure"/> now; presets
/// will build plans the same way. <see cref="ModelQuantizer"/> carries a plan out.
/// </summary>
public sealed class QuantizationPlan
{
    public QuantizationPlan(LlamaFileType fileType, IReadOnlyList<TensorPlan> tensors)
    {
        FileType = fileType;
        Tensors = tensors;
    }

    /// <summary>The file type written to <c>general.file_type</c>.</summary>
    public LlamaFileType FileType { get; }

    /// <summary>One entry per tensor, in output order.</summary>
    public IReadOnlyList<TensorPlan> Tensors { get; }

    /// <summary>How many tensors needed the row-size fallback.</summary>
    public int FallbackCount => Tensors.Count(t => t.FellBack);

    /// <summary>
    /// llama.cpp's <c>--pure</c>: every quantizable tensor gets the target's tensor type (output and token
    /// embeddings included: <c>--pure</c> skips the mixture rules that treat them specially), then the row-size
    /// fallback; other tensors keep their type. When the target type is not a quantized type (F32, F16, BF16) there
    /// is no fallback, as in llama.cpp. <paramref name="options"/> carries llama-quantize's
    /// <c>--leave-output-tensor</c>, <c>--output-tensor-type</c> and <c>--token-embedding-type</c>, which apply first.
    /// </summary>
    public static QuantizationPlan Pure(GgufFile model, QuantizeTarget target, PureOptions? options = null)
    {
        options ??= new PureOptions();
        var type = target.TensorType;
        bool quantized = GgmlTypes.Get(type).IsQuantized;
        var plans = new List<TensorPlan>(model.Tensors.Count);
        foreach (var t in LlamaOrder(model.Tensors))
        {
            var q = QuantizableTensors.Check(t, options.QuantizeOutput);
            if (!q.Allowed)
            {
                plans.Add(new TensorPlan(t, t.Type, $"kept ({q.Reason})", false, false));
                continue;
            }
            // llama.cpp returns these types as given: no fallback, so rows that do not fit are an error here.
            var given = ImatrixRequirement.TokenEmbeddingNames.Contains(t.Name) ? options.TokenEmbeddingType
                : t.Name == QuantizableTensors.OutputWeight ? options.OutputTensorType : null;
            if (given is { } g)
            {
                int block = GgmlTypes.Get(g).BlockSize;
                if (t.Shape[0] % block != 0)
                    throw new QuantizationException($"tensor '{t.Name}': rows of {t.Shape[0]} do not fit {g.Name()} (block {block}), the type asked for it", t.Name);
                plans.Add(new TensorPlan(t, g, $"{g.Name()} as asked for this tensor", false, ImatrixRequirement.Requires(t.Name, g, target.FileType)));
                continue;
            }
            var chosen = type;
            string reason = $"pure {target.Name}";
            bool fellBack = false;
            if (quantized)
            {
                var (fitted, why) = TypeFallback.Apply(t.Name, t.Shape[0], type);
                if (why is not null) { chosen = fitted; reason = $"{reason}, fallback: {why}"; fellBack = true; }
            }
            plans.Add(new TensorPlan(t, chosen, reason, fellBack, ImatrixRequirement.Requires(t.Name, chosen, target.FileType)));
        }
        return new QuantizationPlan(target.FileType, plans);
    }

    /// <summary>
    /// The order llama.cpp's model loader keeps weights in (<c>weight_name_comparer</c>): by block number (names not
    /// starting with <c>blk.N.</c> first), then by name, byte-wise.
    /// </summary>
    public static IEnumerable<GgufTensorInfo> LlamaOrder(IEnumerable<GgufTensorInfo> tensors) =>
        tensors.OrderBy(t => BlockNumber(t.Name)).ThenBy(t => t.Name, StringComparer.Ordinal);

    /// <summary>The N of a name starting <c>blk.N</c> (as C's <c>sscanf("blk.%d.")</c> reads it), else -1.</summary>
    public static long BlockNumber(string name)
    {
        const string prefix = "blk.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) return -1;
        int i = prefix.Length, start = i;
        if (i < name.Length && (name[i] == '-' || name[i] == '+')) i++;
        while (i < name.Length && char.IsAsciiDigit(name[i])) i++;
        if (i == start || !char.IsAsciiDigit(name[i - 1])) return -1;
        return int.TryParse(name.AsSpan(start, i - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) ? n : -1;
    }
}

/// <summary>
/// Which tensors llama.cpp refuses to quantize without an imatrix (<c>tensor_requires_imatrix</c> in
/// src/llama-quant.cpp at 815a2a591): the 1- to 3-bit i-quants, and Q2_K in a Q2_K_S file. The output and token
/// embeddings are exempt (llama.cpp quantizes them without importance weights).
/// </summary>
public static class ImatrixRequirement
{
    /// <summary>Types that always need importance weights, with why.</summary>
    public static IReadOnlyDictionary<GgmlType, string> Types { get; } = new Dictionary<GgmlType, string>
    {
        [GgmlType.IQ3_XXS] = "1- to 3-bit i-quants are garbage without importance weights",
        [GgmlType.IQ2_XXS] = "1- to 3-bit i-quants are garbage without importance weights",
        [GgmlType.IQ2_XS] = "1- to 3-bit i-quants are garbage without importance weights",
        [GgmlType.IQ2_S] = "1- to 3-bit i-quants are garbage without importance weights",
        [GgmlType.IQ1_M] = "1- to 3-bit i-quants are garbage without importance weights",
        [GgmlType.IQ1_S] = "1- to 3-bit i-quants are garbage without importance weights",
    };

    /// <summary>The token embeddings' names (llama.cpp's <c>tensor_name_match_token_embd</c>).</summary>
    public static IReadOnlyList<string> TokenEmbeddingNames { get; } = ["token_embd.weight", "per_layer_token_embd.weight"];

    /// <summary>Names exempt from the requirement: the token embeddings and the output.</summary>
    public static IReadOnlyList<string> ExemptNames { get; } = [.. TokenEmbeddingNames, QuantizableTensors.OutputWeight];

    /// <summary>Whether llama.cpp requires importance weights to quantize <paramref name="name"/> to <paramref name="type"/> in a <paramref name="fileType"/> file.</summary>
    public static bool Requires(string name, GgmlType type, LlamaFileType fileType)
    {
        if (ExemptNames.Contains(name)) return false;
        if (Types.ContainsKey(type)) return true;
        return type == GgmlType.Q2_K && fileType == LlamaFileType.Q2_K_S;
    }
}
