using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Quantization;

/// <summary>How a <see cref="TensorNameRule"/> compares its text with a tensor name.</summary>
public enum NameMatch
{
    /// <summary>The whole name equals the text.</summary>
    Equals,
    /// <summary>The name contains the text anywhere.</summary>
    Contains,
}

/// <summary>A tensor llama.cpp never quantizes, recognised by name, and why.</summary>
public sealed record TensorNameRule(NameMatch Match, string Text, string Reason)
{
    public bool Matches(string name) => Match switch
    {
        NameMatch.Equals => string.Equals(name, Text, StringComparison.Ordinal),
        _ => name.Contains(Text, StringComparison.Ordinal),
    };
}

/// <summary>Whether a tensor may be quantized, and the reason.</summary>
public readonly record struct Quantizability(bool Allowed, string Reason);

/// <summary>
/// Which tensors llama.cpp quantizes: <c>tensor_allows_quantization</c> in src/llama-quant.cpp at 815a2a591, as data.
/// A tensor is quantized when it has at least two dimensions (ggml counts dimensions up to the last one above 1),
/// its name ends in "weight", and no rule below excludes it.
/// </summary>
public static class QuantizableTensors
{
    /// <summary>The name of the output projection, which <c>--leave-output-tensor</c> keeps as it is.</summary>
    public const string OutputWeight = "output.weight";

    /// <summary>The exclusions, in llama.cpp's order.</summary>
    public static IReadOnlyList<TensorNameRule> Exclusions { get; } =
    [
        new(NameMatch.Contains, "_norm.weight", "a norm"),
        new(NameMatch.Contains, "ffn_gate_inp.weight", "the expert router (gating input)"),
        new(NameMatch.Contains, "ffn_gate_tid2eid.weight", "an integer token-to-expert routing table"),
        new(NameMatch.Contains, "altup", "an AltUp tensor (tiny)"),
        new(NameMatch.Contains, "laurel", "a LAuReL tensor (tiny)"),
        new(NameMatch.Contains, "per_layer_model_proj", "the per-layer model projection (small)"),
        // llama.cpp compares these two with the architecture's own names (LLM_TN); every architecture spells them so.
        new(NameMatch.Equals, "position_embd.weight", "position embeddings"),
        new(NameMatch.Equals, "token_types.weight", "token-type embeddings"),
        new(NameMatch.Contains, "ssm_conv1d", "a small SSM conv1d weight"),
        new(NameMatch.Contains, "shortconv.conv.weight", "a small short-convolution weight"),
        new(NameMatch.Contains, "indexer.k_proj.weight", "a tiny indexer projection"),
        new(NameMatch.Contains, "indexer.q_proj.weight", "a tiny indexer projection"),
        new(NameMatch.Contains, "time_mix_first.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_w0.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_w1.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_w2.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_v0.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_v1.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_v2.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_a0.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_a1.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_a2.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_g1.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_g2.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_decay_w1.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_decay_w2.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "time_mix_lerp_fused.weight", "a small RWKV weight"),
        new(NameMatch.Contains, "attn_rel_b.weight", "a relative position bias (T5)"),
        new(NameMatch.Contains, ".position_embd", "a multimodal position embedding"),
        new(NameMatch.Contains, "sam.pos_embd", "a multimodal (SAM) position embedding"),
        new(NameMatch.Contains, "sam.neck.", "a multimodal (SAM) neck tensor"),
        new(NameMatch.Contains, "sam.net_", "a multimodal (SAM) tensor"),
        new(NameMatch.Contains, ".rel_pos", "a multimodal relative position tensor"),
        new(NameMatch.Contains, ".patch_embd", "a multimodal patch embedding"),
        new(NameMatch.Contains, ".patch_merger", "a multimodal patch merger"),
        new(NameMatch.Contains, "a.rvq.codebook", "an audio codebook"),
        new(NameMatch.Contains, "mm.a.code_embd", "an audio code embedding"),
    ];

    /// <summary>
    /// ggml's <c>ggml_n_dims</c>: the number of dimensions up to the last one larger than 1 (at least 1), so a
    /// [4096, 1] tensor counts as 1-D.
    /// </summary>
    public static int EffectiveDimensions(IReadOnlyList<long> shape)
    {
        for (int i = shape.Count - 1; i >= 1; i--)
            if (shape[i] > 1) return i + 1;
        return 1;
    }

    /// <summary>Whether llama.cpp would quantize a tensor named <paramref name="name"/> of <paramref name="shape"/>.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="shape">Its shape in ggml order.</param>
    /// <param name="quantizeOutput">False with <c>--leave-output-tensor</c>: <c>output.weight</c> is kept.</param>
    public static Quantizability Check(string name, IReadOnlyList<long> shape, bool quantizeOutput = true)
    {
        if (EffectiveDimensions(shape) < 2) return new(false, "1-D tensor");
        if (!name.EndsWith("weight", StringComparison.Ordinal)) return new(false, "name does not end in \"weight\"");
        foreach (var rule in Exclusions)
            if (rule.Matches(name)) return new(false, rule.Reason);
        if (!quantizeOutput && name == OutputWeight) return new(false, "output tensor left as it is (--leave-output-tensor)");
        return new(true, "quantizable weight");
    }

    /// <inheritdoc cref="Check(string, IReadOnlyList{long}, bool)"/>
    public static Quantizability Check(GgufTensorInfo tensor, bool quantizeOutput = true) => Check(tensor.Name, tensor.Shape, quantizeOutput);
}

/// <summary>
/// The type a tensor gets when its rows do not fit the chosen type's block: llama.cpp's <c>tensor_type_fallback</c>
/// (src/llama-quant.cpp at 815a2a591). If the fallback does not fit either (rows not a multiple of 32), F16.
/// </summary>
public static class TypeFallback
{
    /// <summary>One entry: a 256-element (or 64-element) type and the 32-element type that replaces it, with why.</summary>
    public sealed record Rule(GgmlType From, GgmlType To, string Reason);

    /// <summary>The fallback table.</summary>
    public static IReadOnlyList<Rule> Rules { get; } =
    [
        new(GgmlType.IQ1_S, GgmlType.IQ4_NL, "i-quants fall back to the 32-block non-linear IQ4_NL"),
        new(GgmlType.IQ1_M, GgmlType.IQ4_NL, "i-quants fall back to the 32-block non-linear IQ4_NL"),
        new(GgmlType.IQ2_XXS, GgmlType.IQ4_NL, "i-quants fall back to the 32-block non-linear IQ4_NL"),
        new(GgmlType.IQ2_XS, GgmlType.IQ4_NL, "i-quants fall back to the 32-block non-linear IQ4_NL"),
        new(GgmlType.IQ2_S, GgmlType.IQ4_NL, "i-quants fall back to the 32-block non-linear IQ4_NL"),
        new(GgmlType.IQ3_XXS, GgmlType.IQ4_NL, "i-quants fall back to the 32-block non-linear IQ4_NL"),
        new(GgmlType.IQ3_S, GgmlType.IQ4_NL, "i-quants fall back to the 32-block non-linear IQ4_NL"),
        new(GgmlType.IQ4_XS, GgmlType.IQ4_NL, "i-quants fall back to the 32-block non-linear IQ4_NL"),
        new(GgmlType.Q2_0, GgmlType.Q4_0, "2-bit and ternary types fall back to Q4_0"),
        new(GgmlType.Q2_K, GgmlType.Q4_0, "2-bit and ternary types fall back to Q4_0"),
        new(GgmlType.Q3_K, GgmlType.Q4_0, "2-bit and ternary types fall back to Q4_0"),
        new(GgmlType.TQ1_0, GgmlType.Q4_0, "2-bit and ternary types fall back to Q4_0"),
        new(GgmlType.TQ2_0, GgmlType.Q4_0, "2-bit and ternary types fall back to Q4_0"),
        new(GgmlType.Q4_K, GgmlType.Q5_0, "Q4_K falls back to Q5_0"),
        new(GgmlType.Q5_K, GgmlType.Q5_1, "Q5_K falls back to Q5_1"),
        new(GgmlType.Q6_K, GgmlType.Q8_0, "Q6_K falls back to Q8_0"),
    ];

    /// <summary>The last resort when even the fallback does not fit.</summary>
    public const GgmlType LastResort = GgmlType.F16;

    private static readonly Dictionary<GgmlType, Rule> ByFrom = Rules.ToDictionary(r => r.From);

    /// <summary>The fallback rule for <paramref name="type"/>, or null when llama.cpp defines none.</summary>
    public static Rule? Find(GgmlType type) => ByFrom.GetValueOrDefault(type);

    /// <summary>
    /// The type for rows of <paramref name="rowLength"/> elements when <paramref name="type"/> was chosen, with the
    /// reason when it changed (null reason: it fits). Throws <see cref="QuantizationException"/> when the rows do not
    /// fit and llama.cpp defines no fallback for the type (as it does).
    /// </summary>
    public static (GgmlType Type, string? Reason) Apply(string tensorName, long rowLength, GgmlType type)
    {
        int block = GgmlTypes.Get(type).BlockSize;
        if (rowLength % block == 0) return (type, null);
        var rule = Find(type) ?? throw new QuantizationException(
            $"tensor '{tensorName}': rows of {rowLength} do not fit {type.Name()}'s block of {block}, and llama.cpp defines no fallback for {type.Name()}");
        string why = $"rows of {rowLength} do not fit {type.Name()} (block {block})";
        if (rowLength % GgmlTypes.Get(rule.To).BlockSize == 0) return (rule.To, why);
        return (LastResort, $"{why} nor {rule.To.Name()} (block {GgmlTypes.Get(rule.To).BlockSize})");
    }
}
