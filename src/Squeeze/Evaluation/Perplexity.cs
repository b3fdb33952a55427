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

    /// <summary>
    /// llama-perplexity's <c>--ppl-stride</c>: when positive, the strided variant (<c>perplexity_v2</c>): windows that
    /// start every <c>Stride</c> tokens, each scoring its last <c>Stride</c> predictions. 0 = the chunked perplexity.
    /// </summary>
    public int Stride { get; init; }

    public int Threads { get; init; } = Workers.DefaultThreads;
}

/// <summary>Progress after each chunk (or strided window): its number (1-based), the total, and the perplexity so far.</summary>
public readonly record struct PerplexityProgress(int Chunk, int ChunkCount, double Ppl)
{
    /// <summary>
    /// The token offset llama-perplexity prints with <c>--ppl-output-type 1</c>: the first chunk of the chunk's batch
    /// times n_ctx (every chunk decoded in one batch shows the same offset, as llama.cpp prints it), or, strided, the
    /// window's start.
    /// </summary>
    public long Offset { get; init; }

    /// <summary>Mean negative log-likelihood so far (ln PPL).</summary>
    public double MeanNll { get; init; }

    /// <summary>
    /// The last column of <c>--ppl-output-type 1</c>: sqrt((E[nll²] − E[nll]²)/(N − 1)) when the variance is positive,
    /// else the variance itself, as llama-perplexity prints it. Not computed for strided runs (0).
    /// </summary>
    public double NllDeviation { get; init; }
}

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
    double Ppl, double Uncertainty, double MeanNll, double Seconds)
{
    /// <summary>
    /// The stride of a strided run (then <see cref="ContextSize"/> is the window, <see cref="ChunkCount"/> the windows and
    /// <see cref="Uncertainty"/> Squeeze's own: llama-perplexity prints none for strided runs); 0 for the chunked run.
    /// </summary>
    public int Stride { get; init; }
}

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

    /// <summary>
    /// How llama-perplexity lays out chunks for n_ctx and n_batch: n_seq = max(1, n_batch/n_ctx) chunks decoded together,
    /// and the effective n_batch (at most n_seq·n_ctx).
    /// </summary>
    public static (int Sequences, int BatchSize) ChunkLayout(int contextSize, int batchSize) => ChunkEvaluator.Layout(contextSize, batchSize);

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
        if (options.Stride != 0)
        {
            if (baseFile is not null) throw new InvalidInputException("--ppl-stride cannot write a KL-divergence base file (llama-perplexity's strided run writes none)");
            return RunStrided(decoder, tokenizer, tokens, options, progress, cancellation);
        }
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
            if (progress is not null)
            {
                double av = sum / count, av2 = sum2 / count - av * av;
                if (av2 > 0) av2 = Math.Sqrt(av2 / (count - 1));
                progress.Report(new PerplexityProgress(c + 1, chunks, Math.Exp(av))
                {
                    Offset = (long)(c / evaluator.Sequences * evaluator.Sequences) * nCtx,
                    MeanNll = av,
                    NllDeviation = av2,
                });
            }
        }, cancellation);

        double mean = sum / count;
        double ppl = Math.Exp(mean);
        double variance = sum2 / count - mean * mean;
        double uncertainty = variance > 0 ? Math.Sqrt(variance / (count - 1)) * ppl : 0;
        return new PerplexityResult(nCtx, evaluator.BatchSize, evaluator.Sequences, chunks, tokens.Length, count, ppl, uncertainty, mean, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The window and batch of a strided run as llama-perplexity sets them up for <c>-c</c>, <c>-b</c> and
    /// <c>--ppl-stride</c>: the context asked for is n_ctx + stride/2, which llama.cpp's context rounds up to a multiple
    /// of 256 cells (<c>GGML_PAD(n_ctx, 256)</c> in llama-context.cpp), and that rounded size is the window
    /// (<c>llama_n_ctx</c>). The batch is min(n_batch, n_ctx). A batch of two contexts or more makes llama-perplexity
    /// split its cache into n_batch/n_ctx sequences, none of which holds a window, so it fails to decode; that is refused.
    /// </summary>
    public static (int Window, int BatchSize) StridedLayout(int contextSize, int batchSize, int stride)
    {
        if (contextSize < 1) throw new InvalidInputException($"the context size must be at least 1 token, not {contextSize}");
        if (batchSize < 1) throw new InvalidInputException($"the batch size must be at least 1, not {batchSize}");
        if (stride < 1) throw new InvalidInputException($"--ppl-stride must be positive, not {stride}");
        if (batchSize / contextSize > 1)
            throw new InvalidInputException($"--ppl-stride needs --batch-size below twice --ctx-size ({batchSize} >= 2 x {contextSize}): llama-perplexity then splits its cache into {batchSize / contextSize} sequences and cannot decode a window; use -b {contextSize}");
        long window = ((long)contextSize + stride / 2 + 255) / 256 * 256;
        if (window > int.MaxValue / 2) throw new InvalidInputException($"a context of {contextSize} with stride {stride} is too large");
        if (stride > window - 1)
            throw new InvalidInputException($"--ppl-stride {stride} must be smaller than the window of {window} tokens (--ctx-size {contextSize} + stride/2, rounded up to 256)");
        return ((int)window, Math.Min(batchSize, contextSize));
    }

    /// <summary>
    /// llama-perplexity's strided perplexity (<c>perplexity_v2</c>): windows of <see cref="StridedLayout"/>'s size starting
    /// at 0, stride, 2·stride, … (⌈(tokens − window)/stride⌉ of them), each decoded from an empty cache at positions 0..
    /// in batches of n_batch; the last <c>stride</c> predictions of each window are scored. As in llama.cpp, the window's
    /// first token is the text's own (llama.cpp substitutes BOS only after the decode, so the model never sees it), and
    /// the probability goes through float: p = (float)(e^(l−max) / Σ), nll += −logf(p).
    /// </summary>
    private static PerplexityResult RunStrided(Func<int, IBatchDecoder> decoder, Tokenizer tokenizer, int[] tokens, PerplexityOptions options,
        IProgress<PerplexityProgress>? progress, CancellationToken cancellation)
    {
        int stride = options.Stride;
        var (window, nBatch) = StridedLayout(options.ContextSize, options.BatchSize, stride);
        if (tokens.Length < 2L * window)
            throw new InvalidInputException($"the text tokenizes to {tokens.Length} tokens; a strided window of {window} needs at least {2 * window}");
        if (options.Chunks == 0) throw new InvalidInputException("--chunks must not be 0");
        ChunkBos(tokenizer);
        int chunkMax = (tokens.Length - window + stride - 1) / stride;
        int chunks = options.Chunks < 0 ? chunkMax : Math.Min(options.Chunks, chunkMax);
        var model = decoder(window);
        int nVocab = model.VocabSize;
        if (tokenizer.VocabSize != nVocab)
            throw new InvalidInputException($"the vocabulary has {tokenizer.VocabSize} tokens but the model's output has {nVocab}");
        // Scored rows: positions window−stride−1 .. window−2, each predicting the next token.
        int first = window - stride - 1;
        if ((long)stride * nVocab > Array.MaxLength)
            throw new InvalidInputException($"a stride of {stride} needs too many logits ({stride} x {nVocab}); use a smaller stride");

        var clock = Stopwatch.StartNew();
        var logits = new float[(long)stride * nVocab];
        var nll = new float[stride];
        var batch = new List<BatchToken>(nBatch);
        double sum = 0, sum2 = 0;
        long count = 0;
        for (int i = 0; i < chunks; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            int start = i * stride;
            model.ClearCache();
            int rows = 0;
            for (int b = 0; b < window; b += nBatch)
            {
                int size = Math.Min(window - b, nBatch);
                batch.Clear();
                int outputs = 0;
                for (int k = 0; k < size; k++)
                {
                    int pos = b + k;
                    bool output = pos >= first && pos <= window - 2;
                    batch.Add(new BatchToken(tokens[start + pos], pos, 0, output));
                    if (output) outputs++;
                }
                var result = model.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(batch));
                result.AsSpan(0, outputs * nVocab).CopyTo(logits.AsSpan(rows * nVocab));
                rows += outputs;
            }
            Workers.For(stride, options.Threads, (from, to) =>
            {
                for (int r = from; r < to; r++)
                    nll[r] = -MathF.Log(SoftmaxProbability(logits.AsSpan(r * nVocab, nVocab), tokens[start + first + r + 1]));
            });
            for (int r = 0; r < stride; r++)
            {
                sum += nll[r];
                sum2 += (double)nll[r] * nll[r];
            }
            count += stride;
            progress?.Report(new PerplexityProgress(i + 1, chunks, Math.Exp(sum / count)) { Offset = (long)i * stride, MeanNll = sum / count });
        }
        double mean = sum / count;
        double ppl = Math.Exp(mean);
        double variance = sum2 / count - mean * mean;
        double uncertainty = variance > 0 && count > 1 ? Math.Sqrt(variance / (count - 1)) * ppl : 0;
        return new PerplexityResult(window, nBatch, 1, chunks, tokens.Length, count, ppl, uncertainty, mean, clock.Elapsed.TotalSeconds) { Stride = stride };
    }

    /// <summary>llama-perplexity's <c>softmax(...)[token]</c>: float exponentials summed in double, the quotient stored as float.</summary>
    private static float SoftmaxProbability(ReadOnlySpan<float> row, int token)
    {
        float max = row[0];
        foreach (float v in row) max = Math.Max(max, v);
        double sum = 0;
        float at = 0;
        for (int i = 0; i < row.Length; i++)
        {
            float e = MathF.Exp(row[i] - max);
            sum += e;
            if (i == token) at = e;
        }
        return (float)(at / sum);
    }
}
