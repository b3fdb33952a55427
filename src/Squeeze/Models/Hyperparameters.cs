using Squeeze.Gguf;

namespace Squeeze.Models;

/// <summary>A model's shape and constants, read from GGUF metadata (<c>{arch}.*</c> keys) as llama.cpp reads them.</summary>
public sealed record Hyperparameters
{
    public required string Architecture { get; init; }
    public required int VocabSize { get; init; }
    public required int ContextLength { get; init; }
    public required int EmbeddingLength { get; init; }
    public required int LayerCount { get; init; }
    public required int FeedForwardLength { get; init; }
    public required int HeadCount { get; init; }
    public required int KvHeadCount { get; init; }
    /// <summary>Elements per attention head (<c>attention.key_length</c>, default n_embd / n_head).</summary>
    public required int HeadDim { get; init; }
    public required float RmsNormEpsilon { get; init; }
    /// <summary>Dimensions rotated by RoPE (<c>rope.dimension_count</c>, default the head size).</summary>
    public required int RopeDimensions { get; init; }
    public required float RopeFreqBase { get; init; }
    /// <summary>RoPE frequency scale: 1 / linear scaling factor (1 when unscaled).</summary>
    public required float RopeFreqScale { get; init; }

    /// <summary>Query heads per key/value head.</summary>
    public int GqaRatio => HeadCount / KvHeadCount;

    /// <summary>Reads the hyperparameters of <paramref name="file"/>; a missing or invalid key is an error naming it.</summary>
    public static Hyperparameters Read(GgufFile file)
    {
        var arch = file.Architecture ?? throw new InvalidInputException($"metadata key '{GgufKeys.General.Architecture}' is missing");
        int Required(string key) => ToInt(key, file.Find(key) ?? throw new InvalidInputException($"metadata key '{key}' is missing"));
        int Optional(string key, int fallback) => file.Find(key) is { } v ? ToInt(key, v) : fallback;
        float OptionalFloat(string key, float fallback) => file.Find(key) is { } v ? (float)v.AsDouble() : fallback;

        int embd = Required(GgufKeys.Arch.EmbeddingLength(arch));
        int heads = Required(GgufKeys.Arch.AttentionHeadCount(arch));
        int kvHeads = Optional(GgufKeys.Arch.AttentionHeadCountKv(arch), heads);
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
            throw new InvalidInputException($"head counts {heads} / {kvHeads}: the query heads must be a positive multiple of the key/value heads");
        int headDim = Optional(GgufKeys.Arch.AttentionKeyLength(arch), embd / heads);
        int vocab = file.Find(GgufKeys.Arch.VocabSize(arch)) is { } vs ? ToInt(GgufKeys.Arch.VocabSize(arch), vs)
            : file.Find(GgufKeys.Tokenizer.Tokens)?.Value is GgufArray tokens ? tokens.Count
            : throw new InvalidInputException($"neither '{GgufKeys.Arch.VocabSize(arch)}' nor '{GgufKeys.Tokenizer.Tokens}' gives the vocabulary size");
        float scale = 1f;
        if (file.Find(GgufKeys.Arch.RopeScalingType(arch))?.Value is string scalingType && scalingType is not ("none" or "linear"))
            throw new InvalidInputException($"RoPE scaling '{scalingType}' is not supported yet");
        float factor = OptionalFloat(GgufKeys.Arch.RopeScalingFactor(arch), OptionalFloat(GgufKeys.Arch.RopeScaleLinear(arch), 0f));
        if (factor > 0) scale = 1f / factor;

        return new Hyperparameters
        {
            Architecture = arch,
            VocabSize = vocab,
            ContextLength = Required(GgufKeys.Arch.ContextLength(arch)),
            EmbeddingLength = embd,
            LayerCount = Required(GgufKeys.Arch.BlockCount(arch)),
            FeedForwardLength = Required(GgufKeys.Arch.FeedForwardLength(arch)),
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim,
            RmsNormEpsilon = OptionalFloat(GgufKeys.Arch.AttentionLayerNormRmsEpsilon(arch), 1e-5f),
            RopeDimensions = Optional(GgufKeys.Arch.RopeDimensionCount(arch), headDim),
            RopeFreqBase = OptionalFloat(GgufKeys.Arch.RopeFreqBase(arch), 10000f),
            RopeFreqScale = scale,
        };
    }

    private static int ToInt(string key, GgufValue v)
    {
        long n;
        try { n = v.AsInt64(); }
        catch (InvalidOperationException) { throw new InvalidInputException($"metadata key '{key}' is {v.Type.ShortName()}, not an integer"); }
        if (n is < 0 or > int.MaxValue) throw new InvalidInputException($"metadata key '{key}' is {n}, out of range");
        return (int)n;
    }
}
