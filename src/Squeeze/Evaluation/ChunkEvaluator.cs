using Squeeze.Models;

namespace Squeeze.Evaluation;

/// <summary>
/// Decodes chunks of n_ctx tokens the way llama-perplexity does (its <c>perplexity</c> and <c>kl_divergence</c> loops):
/// every chunk starts from an empty cache; when the vocabulary adds BOS, the chunk's first token is replaced by BOS;
/// logits are requested only for positions ≥ n_ctx/2; a chunk is decoded in batches of n_batch tokens, or, when n_batch
/// holds several chunks, n_batch/n_ctx chunks go together as parallel sequences. Memory is one batch's worth of
/// logits, whatever the number of chunks.
/// </summary>
internal sealed class ChunkEvaluator
{
    private readonly IBatchDecoder _decoder;
    private readonly int _bos;

    /// <summary>
    /// The layout llama-perplexity uses for n_ctx and n_batch: n_seq = max(1, n_batch/n_ctx) chunks at once (the cache
    /// holds n_seq·n_ctx tokens), n_batch capped at n_seq·n_ctx.
    /// </summary>
    public static (int Sequences, int BatchSize) Layout(int contextSize, int batchSize)
    {
        int sequences = Math.Max(1, batchSize / contextSize);
        return (sequences, Math.Min(batchSize, sequences * contextSize));
    }

    /// <param name="model">The model (decoded by Squeeze's forward pass).</param>
    /// <param name="contextSize">n_ctx: tokens per chunk.</param>
    /// <param name="batchSize">n_batch as asked for; normalized as llama-perplexity's main() does.</param>
    /// <param name="threads">Worker threads.</param>
    /// <param name="bos">The BOS token to put at each chunk's start, or -1 when the vocabulary adds none.</param>
    public ChunkEvaluator(TransformerModel model, int contextSize, int batchSize, int threads, int bos)
        : this(contextSize, batchSize, bos, cells => new TransformerDecoder(model, cells, threads)) { }

    /// <param name="contextSize">n_ctx.</param>
    /// <param name="batchSize">n_batch as asked for.</param>
    /// <param name="bos">BOS or -1.</param>
    /// <param name="decoder">Makes the decoder, given the cache cells it needs (n_seq·n_ctx).</param>
    public ChunkEvaluator(int contextSize, int batchSize, int bos, Func<int, IBatchDecoder> decoder)
    {
        if (contextSize < 3) throw new InvalidInputException($"the context size must be at least 3 tokens, not {contextSize}");
        if (batchSize < 1) throw new InvalidInputException($"the batch size must be at least 1, not {batchSize}");
        ContextSize = contextSize;
        // llama-perplexity: n_parallel = max(1, n_batch / n_ctx); the context holds n_parallel chunks; n_batch is capped at it.
        (Sequences, BatchSize) = Layout(contextSize, batchSize);
        _bos = bos;
        _decoder = decoder(Sequences * contextSize);
        VocabSize = _decoder.VocabSize;
    }

    public int ContextSize { get; }

    /// <summary>The effective n_batch.</summary>
    public int BatchSize { get; }

    /// <summary>n_seq: chunks decoded together.</summary>
    public int Sequences { get; }

    public int VocabSize { get; }

    /// <summary>First position whose logits are kept: n_ctx/2.</summary>
    public int First => ContextSize / 2;

    /// <summary>Logit rows per chunk: positions n_ctx/2 .. n_ctx−1 (the last predicts nothing in the chunk but llama.cpp asks for it).</summary>
    public int RowsPerChunk => ContextSize - First;

    /// <summary>
    /// Decodes <paramref name="chunkCount"/> chunks. <paramref name="readTokens"/> fills a chunk's n_ctx tokens;
    /// <paramref name="onChunk"/> receives the chunk's index, its tokens (as read, without the BOS substitution) and
    /// <see cref="RowsPerChunk"/> rows of logits, in chunk order.
    /// </summary>
    public void Run(int chunkCount, Action<int, Span<int>> readTokens, Action<int, ReadOnlyMemory<int>, ReadOnlyMemory<float>> onChunk,
        CancellationToken cancellation = default)
    {
        int nCtx = ContextSize, nBatch = BatchSize, nVocab = VocabSize, first = First, rows = RowsPerChunk;
        int batchesPerChunk = (nCtx + nBatch - 1) / nBatch;
        var tokens = new int[Sequences * nCtx];
        var logits = new float[(long)Sequences * rows * nVocab];
        var outputs = new int[Sequences];
        var batch = new List<BatchToken>(nBatch);
        for (int i = 0; i < chunkCount; i += Sequences)
        {
            cancellation.ThrowIfCancellationRequested();
            int sequences = Math.Min(Sequences, chunkCount - i);
            for (int s = 0; s < sequences; s++) readTokens(i + s, tokens.AsSpan(s * nCtx, nCtx));
            _decoder.ClearCache();
            Array.Clear(outputs);
            for (int j = 0; j < batchesPerChunk; j++)
            {
                int start = j * nBatch, size = Math.Min(nCtx - start, nBatch);
                batch.Clear();
                for (int s = 0; s < sequences; s++)
                    for (int k = 0; k < size; k++)
                    {
                        int pos = start + k;
                        int token = pos == 0 && _bos >= 0 ? _bos : tokens[s * nCtx + pos];
                        batch.Add(new BatchToken(token, pos, s, pos >= first));
                    }
                var result = _decoder.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(batch));
                // Outputs come in batch order: sequence by sequence, each with its positions >= first.
                int row = 0;
                for (int s = 0; s < sequences; s++)
                {
                    int n = Math.Max(0, start + size - Math.Max(start, first));
                    result.AsSpan(row * nVocab, n * nVocab).CopyTo(logits.AsSpan((s * rows + outputs[s]) * nVocab));
                    outputs[s] += n;
                    row += n;
                }
            }
            for (int s = 0; s < sequences; s++)
                onChunk(i + s, tokens.AsMemory(s * nCtx, nCtx), logits.AsMemory(s * rows * nVocab, rows * nVocab));
        }
    }
}
