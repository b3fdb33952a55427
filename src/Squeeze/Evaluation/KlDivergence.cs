using System.Diagnostics;
using Squeeze.Models;
using Squeeze.Numerics;
using Squeeze.Tokenizers;

namespace Squeeze.Evaluation;

/// <summary>A value with llama.cpp's uncertainty (one standard error).</summary>
public readonly record struct Estimate(double Value, double Uncertainty);

/// <summary>The sums llama-perplexity's <c>kl_divergence_result</c> keeps, added token by token in order.</summary>
public sealed class KlAccumulator
{
    public double SumNll, SumNll2, SumNllBase, SumNllBase2, SumNllNllBase, SumKld, SumKld2, SumPDiff, SumPDiff2, SumPDiff4;
    public float MaxPDiff;
    public long SameTop, Count;

    /// <summary>Adds one token, with llama.cpp's float products (nll·nll in float, Δp² in float then double).</summary>
    public void Add(in KlToken t)
    {
        SumNll += t.Nll;
        SumNll2 += t.Nll * t.Nll;
        SumNllBase += t.NllBase;
        SumNllBase2 += t.NllBase * t.NllBase;
        SumNllNllBase += t.Nll * t.NllBase;
        SumKld += t.Kld;
        SumKld2 += t.Kld * t.Kld;
        Count++;
        if (t.SameTop) SameTop++;
        SumPDiff += t.ProbabilityDelta;
        double d2 = t.ProbabilityDelta * t.ProbabilityDelta;
        SumPDiff2 += d2;
        SumPDiff4 += d2 * d2;
        MaxPDiff = Math.Max(MaxPDiff, Math.Abs(t.ProbabilityDelta));
    }

    /// <summary>llama.cpp's <c>mean_and_uncertainty</c>: mean and sqrt(var/(N−1)), the latter 0 unless N &gt; 10 and var &gt; 0.</summary>
    public static Estimate MeanAndUncertainty(double sum, double sum2, long count)
    {
        if (count < 1) return new(0, 0);
        double f = sum / count;
        double df = sum2 / count - f * f;
        df = df > 0 && count > 10 ? Math.Sqrt(df / (count - 1)) : 0;
        return new(f, df);
    }

    /// <summary>llama.cpp's <c>covariance</c> of the mean values (0 for fewer than 10 tokens).</summary>
    public static double Covariance(double sumA, double sumB, double sumAB, long count)
    {
        if (count < 10) return 0;
        double v = sumAB / count - (sumA / count) * (sumB / count);
        return v / (count - 1);
    }

    /// <summary>The values of llama-perplexity's per-chunk line so far.</summary>
    public KlRunning Running()
    {
        var logPpl = MeanAndUncertainty(SumNll, SumNll2, Count);
        var logPplBase = MeanAndUncertainty(SumNllBase, SumNllBase2, Count);
        double cov = Covariance(SumNll, SumNllBase, SumNllNllBase, Count);
        double ppl = Math.Exp(logPpl.Value);
        var kld = MeanAndUncertainty(SumKld, SumKld2, Count);
        var mse = MeanAndUncertainty(SumPDiff2, SumPDiff4, Count);
        double rms = Math.Sqrt(mse.Value);
        double top = 1.0 * SameTop / Count;
        return new KlRunning(
            new(ppl, ppl * logPpl.Uncertainty),
            new(logPpl.Value - logPplBase.Value, Math.Sqrt(logPpl.Uncertainty * logPpl.Uncertainty + logPplBase.Uncertainty * logPplBase.Uncertainty - 2.0 * cov)),
            kld,
            new(rms, 0.5 / rms * mse.Uncertainty),
            new(top, Math.Sqrt(top * (1 - top) / (Count - 1))));
    }
}

/// <summary>llama-perplexity's per-chunk KL line: PPL(Q), ln(PPL(Q)/PPL(base)), KL divergence, RMS Δp, same top p (fractions, not %).</summary>
public sealed record KlRunning(Estimate Ppl, Estimate LnPplRatio, Estimate Kld, Estimate RmsDeltaP, Estimate SameTop);

/// <summary>Progress after each chunk of a KL-divergence run.</summary>
public sealed record KlProgress(int Chunk, int ChunkCount, KlRunning Running);

/// <summary>A percentile (fraction 0..1, or the name of an extreme) and its value.</summary>
public sealed record Percentile(string Name, double Fraction, double Value);

/// <summary>Every statistic llama-perplexity prints at the end of a KL-divergence run (probabilities as fractions, not %).</summary>
public sealed record KlDivergenceResult
{
    public required int ContextSize { get; init; }
    public required int ChunkCount { get; init; }
    public required long Tokens { get; init; }
    public required Estimate PplQ { get; init; }
    public required Estimate PplBase { get; init; }
    /// <summary>Cor(ln PPL(Q), ln PPL(base)) as a fraction.</summary>
    public required double Correlation { get; init; }
    public required Estimate LnPplRatio { get; init; }
    public required Estimate PplRatio { get; init; }
    public required Estimate PplDifference { get; init; }
    public required Estimate Kld { get; init; }
    /// <summary>Maximum, 99.9%, 99%, 95%, 90%, median, 10%, 5%, 1%, 0.1%, minimum.</summary>
    public required IReadOnlyList<Percentile> KldPercentiles { get; init; }
    public required Estimate DeltaP { get; init; }
    /// <summary>Maximum, 99.9%, 99%, 95%, 90%, 75%, median, 25%, 10%, 5%, 1%, 0.1%, minimum.</summary>
    public required IReadOnlyList<Percentile> DeltaPPercentiles { get; init; }
    public required Estimate RmsDeltaP { get; init; }
    public required Estimate SameTop { get; init; }
    public required double Seconds { get; init; }

    /// <summary>llama.cpp prints the final statistics only from 100 tokens on.</summary>
    public bool Enough => Tokens >= 100;

    public double KldPercentile(string name) => KldPercentiles.First(p => p.Name == name).Value;
    public double DeltaPPercentile(string name) => DeltaPPercentiles.First(p => p.Name == name).Value;

    /// <summary>The final statistics of <paramref name="acc"/>, with percentiles over the per-token values in the samples.</summary>
    public static KlDivergenceResult From(KlAccumulator acc, SpilledSample kldValues, SpilledSample deltaPValues, int contextSize, int chunks, double seconds)
    {
        long n = acc.Count;
        var logPpl = KlAccumulator.MeanAndUncertainty(acc.SumNll, acc.SumNll2, n);
        var logPplBase = KlAccumulator.MeanAndUncertainty(acc.SumNllBase, acc.SumNllBase2, n);
        double ppl = Math.Exp(logPpl.Value), pplUnc = ppl * logPpl.Uncertainty;
        double pplBase = Math.Exp(logPplBase.Value), pplBaseUnc = pplBase * logPplBase.Uncertainty;
        double cov = KlAccumulator.Covariance(acc.SumNll, acc.SumNllBase, acc.SumNllNllBase, n);
        double cor = cov / (logPpl.Uncertainty * logPplBase.Uncertainty);
        double lnRatio = logPpl.Value - logPplBase.Value;
        double lnRatioUnc = Math.Sqrt(logPpl.Uncertainty * logPpl.Uncertainty + logPplBase.Uncertainty * logPplBase.Uncertainty - 2.0 * cov);
        double ratio = Math.Exp(lnRatio);
        double pplCov = ppl * pplBase * cov;
        double diffUnc = Math.Sqrt(pplUnc * pplUnc + pplBaseUnc * pplBaseUnc - 2.0 * pplCov);
        var mse = KlAccumulator.MeanAndUncertainty(acc.SumPDiff2, acc.SumPDiff4, n);
        double rms = Math.Sqrt(mse.Value);
        double top = 1.0 * acc.SameTop / n;
        return new KlDivergenceResult
        {
            ContextSize = contextSize,
            ChunkCount = chunks,
            Tokens = n,
            PplQ = new(ppl, pplUnc),
            PplBase = new(pplBase, pplBaseUnc),
            Correlation = cor,
            LnPplRatio = new(lnRatio, lnRatioUnc),
            PplRatio = new(ratio, ratio * lnRatioUnc),
            PplDifference = new(ppl - pplBase, diffUnc),
            Kld = KlAccumulator.MeanAndUncertainty(acc.SumKld, acc.SumKld2, n),
            KldPercentiles = Percentiles(kldValues, [("Maximum", 1f), ("99.9%", 0.999f), ("99.0%", 0.990f), ("95.0%", 0.950f), ("90.0%", 0.900f),
                ("Median", 0.5f), ("10.0%", 0.100f), ("5.0%", 0.050f), ("1.0%", 0.010f), ("0.1%", 0.001f), ("Minimum", 0f)]),
            DeltaP = KlAccumulator.MeanAndUncertainty(acc.SumPDiff, acc.SumPDiff2, n),
            DeltaPPercentiles = Percentiles(deltaPValues, [("Maximum", 1f), ("99.9%", 0.999f), ("99.0%", 0.990f), ("95.0%", 0.950f), ("90.0%", 0.900f),
                ("75.0%", 0.750f), ("Median", 0.5f), ("25.0%", 0.250f), ("10.0%", 0.100f), ("5.0%", 0.050f), ("1.0%", 0.010f), ("0.1%", 0.001f), ("Minimum", 0f)]),
            RmsDeltaP = new(rms, 0.5 / rms * mse.Uncertainty),
            SameTop = new(top, Math.Sqrt(top * (1.0 - top) / (n - 1))),
            Seconds = seconds,
        };
    }

    /// <summary>
    /// llama-perplexity's percentiles over the sorted values: the extremes for fractions 0 and 1, the mean of the two middle
    /// values (or the middle one) for the median, otherwise linear interpolation at fraction·(n−1), all in float.
    /// </summary>
    private static List<Percentile> Percentiles(SpilledSample sample, (string Name, float Fraction)[] wanted)
    {
        long n = sample.Count;
        var result = new List<Percentile>(wanted.Length);
        if (n == 0)
        {
            foreach (var (name, f) in wanted) result.Add(new(name, f, double.NaN));
            return result;
        }
        var ranks = new List<long>();
        foreach (var (name, fraction) in wanted)
        {
            if (name == "Median") { ranks.Add(n / 2); ranks.Add(n % 2 == 0 ? n / 2 - 1 : n / 2); }
            else if (fraction <= 0) { ranks.Add(0); ranks.Add(0); }
            else if (fraction >= 1) { ranks.Add(n - 1); ranks.Add(n - 1); }
            else
            {
                float p = fraction * (float)(n - 1);
                long ip = (long)p;
                ranks.Add(ip);
                ranks.Add(Math.Min(ip + 1, n - 1));
            }
        }
        var values = sample.Select(ranks);
        for (int i = 0; i < wanted.Length; i++)
        {
            var (name, fraction) = wanted[i];
            float a = values[2 * i], b = values[2 * i + 1];
            float v;
            if (name == "Median") v = n % 2 == 0 ? 0.5f * (a + b) : a;
            else if (fraction <= 0 || fraction >= 1) v = a;
            else
            {
                float p = fraction * (float)(n - 1);
                p -= (long)p;
                v = (1 - p) * a + p * b;
            }
            result.Add(new(name, fraction, v));
        }
        return result;
    }
}

/// <summary>
/// KL divergence of a model against a base file (llama-perplexity's <c>--kl-divergence</c>): the chunks stored in the
/// file are evaluated again and each scored position is compared with the stored log-probabilities. The file is
/// streamed chunk by chunk and the per-token values for the percentiles go to a temporary file, so memory does not
/// grow with the number of chunks.
/// </summary>
public static class KlDivergence
{
    /// <summary>Runs the comparison. <see cref="PerplexityOptions.ContextSize"/> is ignored (the file's n_ctx is used);
    /// <see cref="PerplexityOptions.Chunks"/>, when positive, limits the chunks compared; a <see cref="PerplexityOptions.Stride"/> is refused.</summary>
    public static KlDivergenceResult Run(TransformerModel model, Tokenizer tokenizer, LogitsFileReader baseFile, PerplexityOptions options,
        IProgress<KlProgress>? progress = null, CancellationToken cancellation = default)
    {
        if (baseFile.Header.VocabSize != model.Hparams.VocabSize)
            throw new InvalidInputException($"the base file was computed with a vocabulary of {baseFile.Header.VocabSize} tokens, the model has {model.Hparams.VocabSize}");
        return Run(cells => new TransformerDecoder(model, cells, options.Threads), tokenizer, baseFile, options, progress, cancellation);
    }

    /// <summary>As <see cref="Run(TransformerModel, Tokenizer, LogitsFileReader, PerplexityOptions, IProgress{KlProgress}?, CancellationToken)"/> with any decoder.</summary>
    public static KlDivergenceResult Run(Func<int, IBatchDecoder> decoder, Tokenizer tokenizer, LogitsFileReader baseFile, PerplexityOptions options,
        IProgress<KlProgress>? progress = null, CancellationToken cancellation = default)
    {
        var header = baseFile.Header;
        if (options.Chunks == 0) throw new InvalidInputException("--chunks must not be 0");
        if (options.Stride != 0) throw new InvalidInputException("--ppl-stride applies to perplexity, not to --kl-divergence");
        int chunks = options.Chunks < 0 ? header.ChunkCount : Math.Min(options.Chunks, header.ChunkCount);
        int bos = Perplexity.ChunkBos(tokenizer);
        int nCtx = header.ContextSize, nVocab = header.VocabSize, scored = header.RecordsPerChunk, nv = header.RecordLength;
        var evaluator = new ChunkEvaluator(nCtx, options.BatchSize, bos, decoder);
        if (evaluator.VocabSize != nVocab)
            throw new InvalidInputException($"the base file was computed with a vocabulary of {nVocab} tokens, the model has {evaluator.VocabSize}");

        var clock = Stopwatch.StartNew();
        var acc = new KlAccumulator();
        using var kldValues = new SpilledSample();
        using var deltaValues = new SpilledSample();
        var records = new ushort[scored * nv];
        var results = new KlToken[scored];
        evaluator.Run(chunks, (c, dest) => baseFile.ReadTokens(c, dest), (c, chunkTokens, logits) =>
        {
            int read = baseFile.ReadNextChunk(records);
            Debug.Assert(read == c);
            int first = nCtx / 2;
            Workers.For(scored, options.Threads, (start, end) =>
            {
                for (int r = start; r < end; r++)
                    results[r] = LogProbabilities.Compare(logits.Span.Slice(r * nVocab, nVocab), records.AsSpan(r * nv, nv), chunkTokens.Span[first + r + 1]);
            });
            foreach (ref readonly var t in results.AsSpan())
            {
                acc.Add(t);
                kldValues.Add((float)t.Kld);
                deltaValues.Add(t.ProbabilityDelta);
            }
            progress?.Report(new KlProgress(c + 1, chunks, acc.Running()));
        }, cancellation);
        return KlDivergenceResult.From(acc, kldValues, deltaValues, nCtx, chunks, clock.Elapsed.TotalSeconds);
    }
}
