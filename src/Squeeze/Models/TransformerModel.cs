using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Models;

/// <summary>
/// A tensor's data held in memory, in <paramref name="Type"/>: its rows as that type stores them.
/// </summary>
public sealed record WeightData(GgmlType Type, byte[] Bytes);

/// <summary>One transformer block's weights.</summary>
public sealed class LayerWeights
{
    public required float[] AttnNorm { get; init; }
    public required Weight AttnQ { get; init; }
    public required Weight AttnK { get; init; }
    public required Weight AttnV { get; init; }
    public required Weight AttnOutput { get; init; }
    public float[]? BiasQ { get; init; }
    public float[]? BiasK { get; init; }
    public float[]? BiasV { get; init; }
    public float[]? BiasOutput { get; init; }
    public float[]? AttnQNorm { get; init; }
    public float[]? AttnKNorm { get; init; }
    public required float[] FfnNorm { get; init; }
    public required Weight FfnGate { get; init; }
    public required Weight FfnUp { get; init; }
    public required Weight FfnDown { get; init; }

    /// <summary>The block's matrices in the order the forward pass uses them.</summary>
    public IEnumerable<Weight> Matrices => [AttnQ, AttnK, AttnV, AttnOutput, FfnGate, FfnUp, FfnDown];
}

/// <summary>
/// A GGUF model opened for inference: hyperparameters, the architecture's spec, and every weight validated
/// against it (a missing or misshapen tensor is an error naming it). Weights stay memory-mapped.
/// </summary>
public sealed class TransformerModel : IDisposable
{
    private readonly bool _ownsFile;

    private readonly IReadOnlyDictionary<string, WeightData>? _substitutes;

    private TransformerModel(GgufFile file, bool ownsFile, IReadOnlyDictionary<string, WeightData>? substitutes = null)
    {
        File = file;
        _ownsFile = ownsFile;
        _substitutes = substitutes;
        Spec = ArchitectureSpec.Find(file.Architecture)
            ?? throw new InvalidInputException($"architecture '{file.Architecture ?? "(none)"}' is not supported (supported: {string.Join(", ", ArchitectureSpec.All.Select(s => s.Name))})");
        Hparams = Hyperparameters.Read(file);
        var h = Hparams;
        if (h.HeadDim % 2 != 0 || h.RopeDimensions > h.HeadDim || h.RopeDimensions % 2 != 0)
            throw new InvalidInputException($"RoPE dimensions {h.RopeDimensions} do not fit heads of {h.HeadDim}");

        TokenEmbd = Require(TensorRole.TokenEmbd, -1, [h.EmbeddingLength, h.VocabSize]);
        OutputNorm = RequireVector(TensorRole.OutputNorm, -1, h.EmbeddingLength);
        var output = Optional(TensorRole.Output, -1, "weight", [h.EmbeddingLength, h.VocabSize]);
        TiedOutput = output is null;
        Output = output ?? TokenEmbd;

        var layers = new LayerWeights[h.LayerCount];
        long kvDim = (long)h.HeadDim * h.KvHeadCount, qDim = (long)h.HeadDim * h.HeadCount;
        for (int l = 0; l < layers.Length; l++)
        {
            layers[l] = new LayerWeights
            {
                AttnNorm = RequireVector(TensorRole.AttnNorm, l, h.EmbeddingLength),
                AttnQ = Require(TensorRole.AttnQ, l, [h.EmbeddingLength, qDim]),
                AttnK = Require(TensorRole.AttnK, l, [h.EmbeddingLength, kvDim]),
                AttnV = Require(TensorRole.AttnV, l, [h.EmbeddingLength, kvDim]),
                AttnOutput = Require(TensorRole.AttnOutput, l, [qDim, h.EmbeddingLength]),
                BiasQ = Bias(TensorRole.AttnQ, l, qDim, Spec.QkvBias),
                BiasK = Bias(TensorRole.AttnK, l, kvDim, Spec.QkvBias),
                BiasV = Bias(TensorRole.AttnV, l, kvDim, Spec.QkvBias),
                BiasOutput = Bias(TensorRole.AttnOutput, l, h.EmbeddingLength, required: false),
                AttnQNorm = Spec.QkNorm ? RequireVector(TensorRole.AttnQNorm, l, h.HeadDim) : null,
                AttnKNorm = Spec.QkNorm ? RequireVector(TensorRole.AttnKNorm, l, h.HeadDim) : null,
                FfnNorm = RequireVector(TensorRole.FfnNorm, l, h.EmbeddingLength),
                FfnGate = Require(TensorRole.FfnGate, l, [h.EmbeddingLength, h.FeedForwardLength]),
                FfnUp = Require(TensorRole.FfnUp, l, [h.EmbeddingLength, h.FeedForwardLength]),
                FfnDown = Require(TensorRole.FfnDown, l, [h.FeedForwardLength, h.EmbeddingLength]),
            };
        }
        Layers = layers;

        foreach (var w in Layers.SelectMany(l => l.Matrices).Append(Output).Append(TokenEmbd))
            if (w.Kernel is null)
                throw new InvalidInputException($"tensor '{w.Name}' has type {w.Type.Name()}, which Squeeze cannot compute with yet");
    }

    public GgufFile File { get; }
    public ArchitectureSpec Spec { get; }
    public Hyperparameters Hparams { get; }
    public Weight TokenEmbd { get; }
    public float[] OutputNorm { get; }

    /// <summary>The output projection: <c>output.weight</c>, or the token embeddings when tied.</summary>
    public Weight Output { get; }

    public bool TiedOutput { get; }
    public IReadOnlyList<LayerWeights> Layers { get; }

    /// <summary>Opens <paramref name="path"/> and validates it as a model.</summary>
    public static TransformerModel Load(string path)
    {
        var file = GgufFile.Open(path);
        try { return new TransformerModel(file, ownsFile: true); }
        catch { file.Dispose(); throw; }
    }

    /// <summary>A model over an already open file (the caller keeps ownership).</summary>
    public static TransformerModel FromFile(GgufFile file) => new(file, ownsFile: false);

    /// <summary>
    /// A model over an already open file in which the named weights are replaced by in-memory data (for example one
    /// tensor quantized to a trial type, to measure what that costs the model's output). The caller keeps ownership.
    /// </summary>
    public static TransformerModel FromFile(GgufFile file, IReadOnlyDictionary<string, WeightData> substitutes) => new(file, ownsFile: false, substitutes);

    public void Dispose()
    {
        if (_ownsFile) File.Dispose();
    }

    private Weight? Optional(TensorRole role, int layer, string suffix, long[] shape)
    {
        var name = role.TensorName(layer, suffix);
        var info = File.FindTensor(name);
        if (info is null) return null;
        if (!info.Shape.SequenceEqual(shape))
            throw new InvalidInputException($"tensor '{name}' has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", shape)}]");
        if (_substitutes is not null && _substitutes.TryGetValue(name, out var sub))
            return new Weight(new GgufTensorInfo(name, sub.Type, info.Shape, info.Offset), role, layer, sub.Bytes);
        return new Weight(File, info, role, layer);
    }

    private Weight Require(TensorRole role, int layer, long[] shape, string suffix = "weight") =>
        Optional(role, layer, suffix, shape) ?? throw new InvalidInputException($"tensor '{role.TensorName(layer, suffix)}' is missing");

    private float[] RequireVector(TensorRole role, int layer, long n) => Vector(Require(role, layer, [n]));

    private float[]? Bias(TensorRole role, int layer, long n, bool required)
    {
        var w = required ? Require(role, layer, [n], "bias") : Optional(role, layer, "bias", [n]);
        return w is null ? null : Vector(w);
    }

    private static float[] Vector(Weight w) =>
        w.Kernel is null ? throw new InvalidInputException($"tensor '{w.Name}' has type {w.Type.Name()}, which Squeeze cannot read yet") : w.ToFloats();
}
