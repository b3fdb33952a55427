using Squeeze.Gguf;

namespace Squeeze.Imatrix;

/// <summary>
/// Per-layer importance scores gathered while collecting an imatrix, kept as sums and token counts so that files
/// can be merged and collections resumed exactly (docs/FORMATS.md names the keys).
/// <list type="bullet">
/// <item><b>LIM</b>, the layer-input-modification score of Dumitru et al. 2024 ("Layer-Wise Quantization", §3.1):
/// <c>LIM(l) = −mean over tokens of cos(h_in, h_out)</c> with <c>h_in</c>/<c>h_out</c> the hidden state entering and
/// leaving layer <c>l</c>. Higher = the layer changes its input more = more important.</item>
/// <item><b>Layer similarity</b>, ik_llama.cpp's <c>--layer-similarity</c>: the mean cosine similarity between the
/// input of layer <c>l</c>'s first matrix product (the attention-normed hidden state) and that of layer <c>l+1</c> (the
/// output projection's input after the last layer). Lower = more important. Also the attention part (first attention
/// input vs first FFN input of the same layer) and the FFN part (FFN input of <c>l</c> vs attention input of <c>l+1</c>).</item>
/// </list>
/// </summary>
public sealed class LayerImportance
{
    /// <summary>Metadata keys (Squeeze's own; llama.cpp ignores them).</summary>
    public static class Keys
    {
        public const string LimSum = "squeeze.layer_importance.lim.cos_sum";
        public const string LimCount = "squeeze.layer_importance.lim.tokens";
        public const string LayerSum = "squeeze.layer_importance.layer_similarity.cos_sum";
        public const string LayerCount = "squeeze.layer_importance.layer_similarity.tokens";
        public const string AttnSum = "squeeze.layer_importance.attn_similarity.cos_sum";
        public const string AttnCount = "squeeze.layer_importance.attn_similarity.tokens";
        public const string FfnSum = "squeeze.layer_importance.ffn_similarity.cos_sum";
        public const string FfnCount = "squeeze.layer_importance.ffn_similarity.tokens";

        internal static readonly (string Sum, string Count)[] All =
            [(LimSum, LimCount), (LayerSum, LayerCount), (AttnSum, AttnCount), (FfnSum, FfnCount)];
    }

    public LayerImportance(int layers)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layers);
        Layers = layers;
        for (int k = 0; k < 4; k++) { _sums[k] = new double[layers]; _counts[k] = new long[layers]; }
    }

    private readonly double[][] _sums = new double[4][];
    private readonly long[][] _counts = new long[4][];

    public int Layers { get; }

    internal enum Score { Lim = 0, Layer = 1, Attn = 2, Ffn = 3 }

    internal void Add(Score score, int layer, double cos, long tokens)
    {
        _sums[(int)score][layer] += cos;
        _counts[(int)score][layer] += tokens;
    }

    /// <summary>Σ cos(h_in, h_out) over tokens, per layer.</summary>
    public ReadOnlySpan<double> LimCosSum => _sums[0];
    public ReadOnlySpan<long> LimTokens => _counts[0];

    /// <summary>LIM of <paramref name="layer"/> (−mean cosine between the hidden state entering and leaving it), NaN without tokens.</summary>
    public double Lim(int layer) => _counts[0][layer] == 0 ? double.NaN : -_sums[0][layer] / _counts[0][layer];

    /// <summary>ik_llama.cpp's ⟨cos⟩ between the first matmul inputs of <paramref name="layer"/> and the next layer, NaN without tokens.</summary>
    public double LayerSimilarity(int layer) => Mean(1, layer);

    /// <summary>ik_llama.cpp's attention ⟨cos⟩ of <paramref name="layer"/>: its attention input vs its FFN input.</summary>
    public double AttentionSimilarity(int layer) => Mean(2, layer);

    /// <summary>ik_llama.cpp's FFN ⟨cos⟩ of <paramref name="layer"/>: its FFN input vs the next layer's attention input.</summary>
    public double FfnSimilarity(int layer) => Mean(3, layer);

    private double Mean(int k, int layer) => _counts[k][layer] == 0 ? double.NaN : _sums[k][layer] / _counts[k][layer];

    /// <summary>Whether anything was recorded.</summary>
    public bool IsEmpty => _counts.All(c => c.All(n => n == 0));

    /// <summary>Adds <paramref name="other"/>'s sums and counts (merging files or resuming).</summary>
    public void Merge(LayerImportance other)
    {
        if (other.Layers != Layers)
            throw new InvalidInputException($"layer-importance scores for {other.Layers} layers cannot be merged with scores for {Layers} layers");
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < Layers; l++) { _sums[k][l] += other._sums[k][l]; _counts[k][l] += other._counts[k][l]; }
    }

    public LayerImportance Clone()
    {
        var c = new LayerImportance(Layers);
        c.Merge(this);
        return c;
    }

    /// <summary>Writes the eight keys (f64 sums, u64 token counts, one entry per layer).</summary>
    public void WriteTo(GgufWriter writer)
    {
        for (int k = 0; k < 4; k++)
        {
            writer.Set(Keys.All[k].Sum, GgufValue.Array(new GgufArray(GgufValueType.Float64, _sums[k].ToArray())));
            writer.Set(Keys.All[k].Count, GgufValue.Array(new GgufArray(GgufValueType.UInt64, _counts[k].Select(c => (ulong)c).ToArray())));
        }
    }

    /// <summary>Reads the keys; null when the file has none of them.</summary>
    /// <exception cref="ImatrixFormatException">Some keys are missing, of the wrong type, or of unequal lengths.</exception>
    public static LayerImportance? Read(GgufFile file)
    {
        if (!Keys.All.Any(k => file.ContainsKey(k.Sum) || file.ContainsKey(k.Count))) return null;
        LayerImportance? result = null;
        for (int k = 0; k < 4; k++)
        {
            var sums = Array<double>(file, Keys.All[k].Sum, GgufValueType.Float64);
            var counts = Array<ulong>(file, Keys.All[k].Count, GgufValueType.UInt64);
            result ??= new LayerImportance(sums.Length);
            if (sums.Length != result.Layers || counts.Length != result.Layers)
                throw new ImatrixFormatException(-1, Keys.All[k].Sum, $"{result.Layers} entries in it and in {Keys.All[k].Count}", $"{sums.Length} and {counts.Length}");
            for (int l = 0; l < result.Layers; l++)
            {
                if (!double.IsFinite(sums[l]) || counts[l] > long.MaxValue || Math.Abs(sums[l]) > counts[l] * (1 + 1e-9))
                    throw new ImatrixFormatException(-1, $"{Keys.All[k].Sum}[{l}]", "a finite sum of cosines no larger than its token count",
                        $"{sums[l]} over {counts[l]} tokens");
                result._sums[k][l] = sums[l];
                result._counts[k][l] = (long)counts[l];
            }
        }
        return result;
    }

    private static T[] Array<T>(GgufFile file, string key, GgufValueType type)
    {
        var v = file.Find(key) ?? throw new ImatrixFormatException(-1, key, "present (the layer-importance keys come together)", "missing");
        if (v.Value is not GgufArray a || a.ElementType != type)
            throw new ImatrixFormatException(-1, key, $"an array of {type.ShortName()}", v.Type.ShortName());
        return a.As<T>();
    }
}
