using System.Diagnostics;
using Squeeze.Models;
using Squeeze.Numerics;

namespace Squeeze.Imatrix;

/// <summary>How <see cref="ImatrixRun.Collect"/> runs (llama-imatrix's options and defaults).</summary>
public sealed record ImatrixOptions
{
    /// <summary>Tokens per chunk (<c>-c</c>, default 512).</summary>
    public int ContextSize { get; init; } = 512;

    /// <summary>Tokens per batch (<c>-b</c>, default 2048): <c>max(1, batch / ctx)</c> chunks are decoded side by side.</summary>
    public int BatchSize { get; init; } = 2048;

    /// <summary>Tokens per forward pass (llama.cpp's <c>n_ubatch</c>, default 512).</summary>
    public int UbatchSize { get; init; } = 512;

    /// <summary>At most this many chunks (<c>--chunks</c>); -1 = all.</summary>
    public int Chunks { get; init; } = -1;

    /// <summary>Chunks skipped at the start of the text (<c>--chunk</c>).</summary>
    public int SkipChunks { get; init; }

    /// <summary>Print the perplexity of each chunk's second half (off with <c>--no-ppl</c>).</summary>
    public bool ComputePerplexity { get; init; } = true;

    /// <summary>Record <c>output.weight</c> too (<c>--process-output</c>).</summary>
    public bool ProcessOutput { get; init; }

    /// <summary>Save the output every this many chunks (<c>--output-frequency</c>, default 10).</summary>
    public int OutputFrequency { get; init; } = 10;

    /// <summary>Also save a snapshot <c>OUT.at_N</c> every this many chunks (<c>--save-frequency</c>); 0 = never.</summary>
    public int SaveFrequency { get; init; }

    /// <summary>Where periodic saves go (null: no periodic saves).</summary>
    public string? OutputPath { get; init; }

    public ImatrixFormat Format { get; init; } = ImatrixFormat.Gguf;

    public int Threads { get; init; }

    /// <summary>Gather Squeeze's per-layer importance scores too.</summary>
    public bool LayerImportance { get; init; } = true;

    /// <summary>Accumulate Σx (<c>.in_sum</c>) besides Σx².</summary>
    public bool InSum { get; init; } = true;
}

/// <summary>Progress after a group of chunks.</summary>
/// <param name="ChunksDone">Chunks of this dataset done (including those a resumed run had done before).</param>
/// <param name="ChunkTotal">Chunks this run will have done at the end.</param>
/// <param name="TokensDone">Tokens decoded by this run so far.</param>
/// <param name="TokensTotal">Tokens this run decodes in all.</param>
/// <param name="SavedTo">The file saved after this group, if any.</param>
/// <param name="ChunkPerplexities">The running perplexity after each chunk of the group, as llama-imatrix prints <c>[i]ppl,</c>.</param>
public sealed record ImatrixProgress(int ChunksDone, int ChunkTotal, long TokensDone, long TokensTotal, IReadOnlyList<(int Chunk, double Perplexity)> ChunkPerplexities, string? SavedTo);

/// <summary>The outcome of a collection.</summary>
public sealed record ImatrixResult(ImatrixData Data, int ChunksDone, int ChunkTotal, double? Perplexity, double? PerplexityError, long TokensProcessed, TimeSpan Elapsed, bool Cancelled);

/// <summary>
/// llama-imatrix's driving loop (<c>compute_imatrix</c>): the text's tokens cut into chunks of <c>ctx</c> tokens, each
/// decoded from an empty cache with its first token replaced by BOS when the vocabulary adds one, all outputs requested;
/// the perplexity of each chunk's second half; periodic saves. Resumable from a saved file's <see cref="ImatrixRunState"/>.
/// </summary>
public static class ImatrixRun
{
    /// <summary>Checks the options and the token count; returns (chunks to process, tokens after skipping).</summary>
    /// <exception cref="InvalidInputException">Too few tokens or inconsistent sizes.</exception>
    public static (int Chunks, int[] Tokens) Plan(IReadOnlyList<int> tokens, ImatrixOptions o)
    {
        int nCtx = o.ContextSize;
        if (nCtx <= 0) throw new InvalidInputException("the context size (-c) must be above 0");
        if (o.BatchSize <= 0 || o.UbatchSize <= 0) throw new InvalidInputException("the batch size (-b) must be above 0");
        // (A batch at least the context size is cut to a whole number of chunks, so llama.cpp's
        // "n_batch < n_ctx || n_batch % n_ctx == 0" always holds.)
        if (o.OutputFrequency < 1) throw new InvalidInputException("--output-frequency must be at least 1");
        if (o.SaveFrequency < 0) throw new InvalidInputException("--save-frequency cannot be negative");
        var list = tokens as int[] ?? tokens.ToArray();
        if (o.SkipChunks < 0) throw new InvalidInputException("--chunk cannot be negative");
        if (o.SkipChunks > 0)
        {
            if ((long)(o.SkipChunks + 2) * nCtx >= list.Length)
                throw new InvalidInputException($"there will be not enough tokens left after removing {o.SkipChunks} chunks");
            list = list[(o.SkipChunks * nCtx)..];
        }
        if (list.Length < 2 * nCtx)
            throw new InvalidInputException($"you need at least {2 * nCtx} tokens for a context of {nCtx} tokens; the text gives only {list.Length}");
        int max = list.Length / nCtx;
        return (o.Chunks < 0 ? max : Math.Min(o.Chunks, max), list);
    }

    /// <summary>
    /// Collects over <paramref name="tokens"/> (the whole tokenized text) into <paramref name="data"/>, whose
    /// <see cref="ImatrixData.ChunkSize"/> must equal the context size. <paramref name="resume"/>: continue a saved run.
    /// Cancelling stops after the chunks in flight and saves what is complete (when an output path is set).
    /// </summary>
    public static ImatrixResult Collect(TransformerModel model, IReadOnlyList<int> tokens, int? bos, ImatrixData data, ImatrixOptions o,
        IProgress<ImatrixProgress>? progress = null, CancellationToken cancel = default, ImatrixRunState? resume = null)
    {
        var (nChunk, toks) = Plan(tokens, o);
        int nCtx = o.ContextSize;
        if (data.ChunkSize != nCtx) throw new ArgumentException($"the imatrix's chunk size {data.ChunkSize} is not the context size {nCtx}");
        int nSeq = Math.Max(1, o.BatchSize / nCtx);
        int nBatch = Math.Min(o.BatchSize, nSeq * nCtx);
        int nUbatch = Math.Min(o.UbatchSize, nBatch);
        int numBatches = (nCtx + nBatch - 1) / nBatch;
        int vocab = model.Hparams.VocabSize;

        int start = 0;
        double nll = 0, nll2 = 0;
        long count = 0;
        int mergedDatasets = data.Datasets.Count;
        if (resume is not null)
        {
            if (resume.ContextSize != nCtx || resume.FirstChunk != o.SkipChunks || resume.DatasetTokens != toks.Length)
                throw new InvalidInputException($"the saved imatrix was collected with -c {resume.ContextSize} --chunk {resume.FirstChunk} over {resume.DatasetTokens} tokens; " +
                    $"this run has -c {nCtx} --chunk {o.SkipChunks} over {toks.Length} tokens: it cannot be resumed");
            start = Math.Min(resume.ChunksDone, nChunk);
            (nll, nll2, count) = (resume.Nll, resume.Nll2, resume.PplTokens);
            mergedDatasets = resume.MergedDatasets;
        }

        var transformer = new Transformer(model, nSeq * nCtx, o.Threads);
        var collector = new ImatrixCollector(data, o.LayerImportance ? model.Hparams.LayerCount : 0, o.InSum) { ProcessOutput = o.ProcessOutput };
        transformer.Observer = collector;
        int first = nCtx / 2;
        var clock = Stopwatch.StartNew();
        long processed = 0;
        int done = start;
        bool cancelled = false;

        void SetState() => data.RunState = new ImatrixRunState(data.Dataset ?? "", toks.Length, nCtx, o.SkipChunks, done, mergedDatasets, nll, nll2, count);
        SetState();

        for (int i = start; i < nChunk; i += nSeq)
        {
            if (cancel.IsCancellationRequested) { cancelled = true; break; }
            int nSeqBatch = Math.Min(nSeq, nChunk - i);
            int before = data.ChunkCount;
            transformer.Cache.Clear();
            var perplexities = new List<(int, double)>();
            var seqNll = new double[nSeqBatch];
            var seqNll2 = new double[nSeqBatch];
            var seqCount = new long[nSeqBatch];
            for (int j = 0; j < numBatches; j++)
            {
                int batchStart = j * nBatch;
                int batchSize = Math.Min(nCtx - batchStart, nBatch);
                var batch = new List<BatchToken>(nSeqBatch * batchSize);
                for (int s = 0; s < nSeqBatch; s++)
                {
                    int seqStart = (i + s) * nCtx + batchStart;
                    for (int k = 0; k < batchSize; k++)
                    {
                        int token = toks[seqStart + k];
                        if (k == 0 && j == 0 && bos is int b) token = b;
                        batch.Add(new BatchToken(token, batchStart + k, s, Output: true));
                    }
                }
                for (int u = 0; u < batch.Count; u += nUbatch)
                {
                    int len = Math.Min(nUbatch, batch.Count - u);
                    var ub = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(batch).Slice(u, len);
                    var logits = transformer.Decode(ub);
                    processed += len;
                    if (!o.ComputePerplexity) continue;
                    for (int r = 0; r < len; r++)
                    {
                        var t = ub[r];
                        if (t.Position < first || t.Position > nCtx - 2) continue;
                        int next = toks[(i + t.Sequence) * nCtx + t.Position + 1];
                        double v = VectorOps.NegativeLogSoftmax(logits.AsSpan(r * vocab, vocab), next);
                        seqNll[t.Sequence] += v;
                        seqNll2[t.Sequence] += v * v;
                        seqCount[t.Sequence]++;
                    }
                }
            }
            // Chunks are added in order, as llama-imatrix prints them: [i] is the running perplexity up to chunk i.
            for (int s = 0; s < nSeqBatch && o.ComputePerplexity; s++)
            {
                nll += seqNll[s];
                nll2 += seqNll2[s];
                count += seqCount[s];
                perplexities.Add((i + s + 1, Math.Exp(nll / Math.Max(1, count))));
            }
            done = i + nSeqBatch;
            SetState();
            string? saved = Save(data, o, before);
            progress?.Report(new ImatrixProgress(done, nChunk, processed, (long)(nChunk - start) * nCtx, perplexities, saved));
        }
        if (cancelled && o.OutputPath is not null) data.Write(o.OutputPath, o.Format);

        double? ppl = null, err = null;
        if (o.ComputePerplexity && count > 0)
        {
            double m = nll / count, m2 = nll2 / count - m * m;
            ppl = Math.Exp(m);
            err = m2 > 0 && count > 1 ? Math.Sqrt(m2 / (count - 1)) * ppl : null;
        }
        return new ImatrixResult(data, done, nChunk, ppl, err, processed, clock.Elapsed, cancelled);
    }

    /// <summary>Saves when the chunk count crossed a multiple of the output (or snapshot) frequency, as llama-imatrix does.</summary>
    private static string? Save(ImatrixData data, ImatrixOptions o, int before)
    {
        if (o.OutputPath is null) return null;
        int now = data.ChunkCount, step = now - before;
        if (step <= 0) return null;
        string? saved = null;
        if (now / o.OutputFrequency != before / o.OutputFrequency)
        {
            data.Write(o.OutputPath, o.Format);
            saved = o.OutputPath;
        }
        if (o.SaveFrequency > 0 && now / o.SaveFrequency != before / o.SaveFrequency)
        {
            var snapshot = $"{o.OutputPath}.at_{now}";
            data.Write(snapshot, o.Format);
            saved ??= snapshot;
        }
        return saved;
    }

    /// <summary>
    /// Prepares resuming from a file a previous run saved: its data (with this run's dataset taken off its dataset list)
    /// and where it stood.
    /// </summary>
    /// <exception cref="InvalidInputException">The file records no run, or another dataset.</exception>
    public static (ImatrixData Data, ImatrixRunState State) Resume(ImatrixFile file, string dataset, int contextSize)
    {
        var state = file.RunState ?? throw new InvalidInputException("the imatrix to resume records no Squeeze collection (was it written by Squeeze's imatrix command in GGUF format?)");
        if (state.Dataset != dataset)
            throw new InvalidInputException($"the imatrix to resume was collected from '{state.Dataset}', not '{dataset}'");
        if (state.ContextSize != contextSize || file.ChunkSize != contextSize)
            throw new InvalidInputException($"the imatrix to resume was collected with -c {state.ContextSize}, not {contextSize}");
        var data = new ImatrixData(contextSize);
        data.Merge(file);
        // The saved dataset list ends with this run's dataset; the ones before it came from --in-file.
        if (data.Datasets.Count > state.MergedDatasets) data.Datasets.RemoveRange(state.MergedDatasets, data.Datasets.Count - state.MergedDatasets);
        data.Dataset = dataset;
        data.ChunkCount = file.ChunkCount;
        return (data, state);
    }
}
