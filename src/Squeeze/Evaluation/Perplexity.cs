using System.Diagnostics;
using Squeeze.Models;
using Squeeze.Numerics;
using Squeeze.Tokenizers;

namespace Squeeze.Evaluation;

/// <summary>Settings of a perplexity or KL-divergence run (llama-perplexity's <c>-c</c>, <c>-b</c>, <c>--chunks</c>, <c>-t</c>).</summary>
public sealed record PerplexityOptions
{
    /// <summary>n_ctx: tokens per chunk (llama-perplexity's default 512). A KL-divergence run takes it from the base file.</summary>
    public int ContextSize { get; init; } = 512;

    /// <summary>n_batch (default 2048): a chunk is decoded in batches of this size, or several chunks go in one batch.</summary>
    public int BatchSize { get; init; } = 2048;

    /// <summary>At most this many chunks; negative = all.</summary>
    public int Chunks { get; init; } = -1;

    public int Threads { get; init; } = Workers.DefaultThreads;
}

/// <summary>Progress after each chunk: its number (1-based), the total, and the perplexity so far.</summary>
public readonly record struct PerplexityProgress(int Chunk, int ChunkCount, double Ppl);

/// <summary>The outcome of a perplexity run.</summary>
/// <param name="ContextSize">n_ctx.</param>
/// <param name="BatchSize">The effective n_batch.</param>
/// <param name="Sequences">Chunks decoded together.</param>
/// <param name="ChunkCount">Chunks evaluated.</param>
/// <param name="TextTokens">Tokens of the whole text.</param>
/// <param name="ScoredTokens">Tokens scored: chunks × (n_ctx − 1 − n_ctx/2).</param>
/// <param name="Ppl">exp(mean negative log-likelihood).</param>
/// <param name="Uncertainty">llama.cpp's ± : sqrt((E[nll²] − E[nll]²)/(N − 1)) · PPL (0 when not positive).</param>
/// <param name="MeanNll">Mean negative log-likelihood (ln PPL).</param>
/// <param name="Seconds">Wall time of the evaluation.</param>
public sealed record PerplexityResult(int ContextSize, int BatchSize, int Sequences, int ChunkCount, int TextTokens, long ScoredTokens,
    double Ppl, double Uncertainty, double MeanNll, double Seconds);

/// <summary>
/// Perplexity as llama-perplexity computes it (tools/perplexity/perplexity.cpp, <c>perplexity</c>): the text's tokens
/// (BOS added as the vocabulary asks) cut into chunks of n_ctx, each evaluated from an empty cache with BOS at its
/// start, scoring the second half of each chunk. Optionally writes the KL-divergence base file as it goes.
/// </summary>
public static class Perplexity
{
    /// <summary>Tokenizes text as llama-perplexity does: add_special = true, parse_special = false.</summary>
    public static int[] Tokenize(Tokenizer tokenizer, ReadOnlySpan<byte> text) => tokenizer.Encode(text.ToArray(), addSpecial: true, parseSpecial: false);

    /// <summary>
    /// Reads a text file as llama.cpp's <c>-f</c> does: the whole file, without one trailing newline.
    /// </summary>
    public static byte[] ReadText(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return bytes.Length > 0 && bytes[^1] == (byte)'\n' ? bytes[..^1] : bytes;
    }

    /// <summary>The BOS token to place at each chunk's start, or -1 (checks llama-perplexity's "no EOS added" rule).</summary>
    internal static int ChunkBos(Tokenizer tokenizer)
    {
        if (tokenizer.AddEos) throw new InvalidInputException("the model's vocabulary adds EOS after the text; perplexity cannot be measured as llama.cpp measures it");
        return tokenizer.AddBos ? tokenizer.Bos : -1;
    }

    /// <summary>
    /// Runs the evaluation over <paramref name="tokens"/>. When <paramref name="baseFile"/> is given, the KL-divergence base
    /// file is written to it (header and tokens first, then each chunk's records).
    /// </summary>
    public static PerplexityResult Run(TransformerModel model, Tokenizer tokenizer, int[] tokens, PerplexityOptions options,
        Stream? baseFile = null, IProgress<PerplexityProgress>? progress = null, CancellationToken cancellation = default) =>
        Run(cells => new TransformerDecoder(model, cells, options.Threads), tokenizer, tokens, options, baseFile, progress, cancellation);

    /// <summary>As <see cref="Run(TransformerModel, Tokenizer, int[], PerplexityOptions, Stream?, IProgress{PerplexityProgress}?, CancellationToken)"/>
    /// with any decoder (made for the cache cells the run needs).</summary>
    public static PerplexityResult Run(Func<int, IBatchDecoder> decoder, Tokenizer tokenizer, int[] tokens, PerplexityOptions options,
        Stream? baseFile = null, IProgress<PerplexityProgress>? progress = null, CancellationToken cancellation = default)
    {
        int nCtx = options.ContextSize;
        if (nCtx < 3) throw new InvalidInputException($"the context size must be at least 3 tokens, not {nCtx}");
        if (tokens.Length < 2L * nCtx)
            throw new InvalidInputException($"the text tokenizes to {tokens.Length} tokens; a context of {nCtx} needs at least {2 * nCtx}");
        if (options.Chunks == 0) throw new InvalidInputException("--chunks must not be 0");
        int bos = ChunkBos(tokenizer);
        int chunkMax = tokens.Length / nCtx;
        int chunks = options.Chunks < 0 ? chunkMax : Math.Min(options.Chunks, chunkMax);
        var evaluator = new ChunkEvaluator(nCtx, options.BatchSize, bos, decoder);
        int nVocab = evaluator.VocabSize, scored = LogitsFileHeader.ScoredPerChunk(nCtx);
        if (tokenizer.VocabSize != nVocab)
            throw new InvalidInputException($"the vocabulary has {tokenizer.VocabSize} tokens but the model's output has {nVocab}");

        LogitsFileWriter? writer = null;
        ushort[] records = [];
        int nv = LogitsFileHeader.RecordUInt16s(nVocab);
        if (baseFile is not null)
        {
            writer = new LogitsFileWriter(baseFile, new LogitsFileHeader(nCtx, nVocab, chunks), tokens);
            records = new ushort[scored * nv];
        }

        var clock = Stopwatch.StartNew();
        var nll = new double[scored];
        double sum = 0, sum2 = 0;
        long count = 0;
        evaluator.Run(chunks, (c, dest) => tokens.AsSpan(c * nCtx, nCtx).CopyTo(dest), (c, chunkTokens, logits) =>
        {
            int first = nCtx / 2;
            Workers.For(scored, options.Threads, (start, end) =>
            {
                for (int r = start; r < end; r++)
                {
                    var row = logits.Span.Slice(r * nVocab, nVocab);
                    int next = chunkTokens.Span[first + r + 1];
                    nll[r] = writer is null ? VectorOps.NegativeLogSoftmax(row, next) : LogProbabilities.Encode(row, next, records.AsSpan(r * nv, nv));
                }
            });
            for (int r = 0; r < scored; r++)
            {
                sum += nll[r];
                sum2 += nll[r] * nll[r];
            }
            count += scored;
            writer?.WriteChunk(records);
            progress?.Report(new PerplexityProgress(c + 1, chunks, Math.Exp(sum / count)));
        }, cancellation);

        double mean = sum / count;
        double ppl = Math.Exp(mean);
        double variance = sum2 / count - mean * mean;
        double uncertainty = variance > 0 ? Math.Sqrt(variance / (count - 1)) * ppl : 0;
        return new PerplexityResult(nCtx, evaluator.BatchSize, evaluator.Sequences, chunks, tokens.Length, count, ppl, uncertainty, mean, clock.Elapsed.TotalSeconds);
    }
}
