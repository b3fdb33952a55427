using Squeeze.Models;

namespace Squeeze.Evaluation;

/// <summary>
/// What evaluation needs from a model: decode a batch of tokens (any mix of sequences and positions) into the logits
/// of the tokens marked <see cref="BatchToken.Output"/>, and forget everything decoded so far. Squeeze's
/// <see cref="Transformer"/> is one (<see cref="TransformerDecoder"/>); tests and benchmarks put llama.cpp behind it to
/// check the evaluation against llama.cpp's own logits and to time both the same way.
/// </summary>
public interface IBatchDecoder
{
    /// <summary>Logits per output row.</summary>
    int VocabSize { get; }

    /// <summary>Empties the KV cache.</summary>
    void ClearCache();

    /// <summary>Decodes <paramref name="batch"/>; returns the output rows' logits in batch order (rows of <see cref="VocabSize"/>).</summary>
    float[] Decode(ReadOnlySpan<BatchToken> batch);
}

/// <summary>Squeeze's forward pass as an <see cref="IBatchDecoder"/>.</summary>
public sealed class TransformerDecoder(Transformer transformer) : IBatchDecoder
{
    /// <summary>A forward pass over <paramref name="model"/> with a cache of <paramref name="cells"/> tokens.</summary>
    public TransformerDecoder(TransformerModel model, int cells, int threads) : this(new Transformer(model, cells, threads)) { }

    public Transformer Transformer { get; } = transformer;
    public int VocabSize => Transformer.Model.Hparams.VocabSize;
    public void ClearCache() => Transformer.Cache.Clear();
    public float[] Decode(ReadOnlySpan<BatchToken> batch) => Transformer.Decode(batch);
}
