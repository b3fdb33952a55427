using System.Collections.Frozen;

namespace Squeeze.Models;

/// <summary>How rotary position embeddings pair dimensions.</summary>
public enum RopeStyle
{
    /// <summary>Adjacent pairs (2i, 2i+1): llama.</summary>
    Normal,
    /// <summary>Halves (i, i + n_rot/2): GPT-NeoX, Qwen2, Qwen3.</summary>
    Neox,
}

/// <summary>
/// What distinguishes one decoder-only architecture from another in Squeeze's single forward pass.
/// A new architecture is a new record here, not new forward-pass code.
/// </summary>
/// <param name="Name">The GGUF <c>general.architecture</c> value.</param>
/// <param name="Rope">Rotary embedding style.</param>
/// <param name="QkvBias">Whether Q, K and V projections carry a bias (required when true; optional biases are used when present).</param>
/// <param name="QkNorm">Whether Q and K get a per-head RMSNorm before RoPE (Qwen3).</param>
public sealed record ArchitectureSpec(string Name, RopeStyle Rope, bool QkvBias, bool QkNorm)
{
    public static readonly ArchitectureSpec Llama = new("llama", RopeStyle.Normal, QkvBias: false, QkNorm: false);
    public static readonly ArchitectureSpec Qwen2 = new("qwen2", RopeStyle.Neox, QkvBias: true, QkNorm: false);
    public static readonly ArchitectureSpec Qwen3 = new("qwen3", RopeStyle.Neox, QkvBias: false, QkNorm: true);

    private static readonly FrozenDictionary<string, ArchitectureSpec> Known =
        new[] { Llama, Qwen2, Qwen3 }.ToFrozenDictionary(s => s.Name, StringComparer.Ordinal);

    /// <summary>Every architecture Squeeze can run.</summary>
    public static IReadOnlyCollection<ArchitectureSpec> All => Known.Values;

    /// <summary>The spec for <paramref name="architecture"/>, or null.</summary>
    public static ArchitectureSpec? Find(string? architecture) =>
        architecture is not null && Known.TryGetValue(architecture, out var spec) ? spec : null;

    /// <summary>The per-layer weight roles this architecture needs, each with its shape in ggml order.</summary>
    public IEnumerable<(TensorRole Role, Func<Hyperparameters, long[]> Shape)> LayerWeights()
    {
        yield return (TensorRole.AttnNorm, h => [h.EmbeddingLength]);
        yield return (TensorRole.AttnQ, h => [h.EmbeddingLength, h.HeadDim * h.HeadCount]);
        yield return (TensorRole.AttnK, h => [h.EmbeddingLength, h.HeadDim * h.KvHeadCount]);
        yield return (TensorRole.AttnV, h => [h.EmbeddingLength, h.HeadDim * h.KvHeadCount]);
        yield return (TensorRole.AttnOutput, h => [h.HeadDim * h.HeadCount, h.EmbeddingLength]);
        if (QkNorm)
        {
            yield return (TensorRole.AttnQNorm, h => [h.HeadDim]);
            yield return (TensorRole.AttnKNorm, h => [h.HeadDim]);
        }
        yield return (TensorRole.FfnNorm, h => [h.EmbeddingLength]);
        yield return (TensorRole.FfnGate, h => [h.EmbeddingLength, h.FeedForwardLength]);
        yield return (TensorRole.FfnUp, h => [h.EmbeddingLength, h.FeedForwardLength]);
        yield return (TensorRole.FfnDown, h => [h.FeedForwardLength, h.EmbeddingLength]);
    }
}
