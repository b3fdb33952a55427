using System.Text;
using Squeeze.Gguf;
using Squeeze.Models;
using Squeeze.Tokenizers;

namespace Squeeze.Quantization.Planning;

/// <summary>
/// Measures how far a model with some weights substituted drifts from the unquantized model: mean KL divergence of the
/// next-token distributions over calibration chunks, with the base model's log-probabilities computed once.
/// </summary>
public sealed class KldCalibrator : IDisposable
{
    private readonly GgufFile _file;
    private readonly IReadOnlyList<int[]> _chunks;
    private readonly int _threads;
    private readonly float[][] _baseLogProbs;
    private readonly int _vocab;

    public KldCalibrator(GgufFile file, IReadOnlyList<int[]> chunks, int threads)
    {
        _file = file;
        _chunks = chunks;
        _threads = threads;
        using var model = TransformerModel.FromFile(file);
        _vocab = model.Hparams.VocabSize;
        var transformer = new Transformer(model, ContextFor(chunks), threads);
        _baseLogProbs = chunks.Select(c =>
        {
            transformer.Cache.Clear();
            var logits = transformer.Evaluate(c);
            LogSoftmaxInPlace(logits, _vocab);
            return logits;
        }).ToArray();
    }

    private static int ContextFor(IReadOnlyList<int[]> chunks) => Math.Max(1, chunks.Count == 0 ? 1 : chunks.Max(c => c.Length));

    /// <summary>Mean KL divergence (base ‖ substituted) over every position of every chunk.</summary>
    public double Measure(IReadOnlyDictionary<string, WeightData> substitutes, CancellationToken cancellation = default)
    {
        using var model = TransformerModel.FromFile(_file, substitutes);
        var transformer = new Transformer(model, ContextFor(_chunks), _threads);
        double sum = 0;
        long count = 0;
        for (int c = 0; c < _chunks.Count; c++)
        {
            cancellation.ThrowIfCancellationRequested();
            transformer.Cache.Clear();
            var logits = transformer.Evaluate(_chunks[c]);
            int positions = _chunks[c].Length;
            for (int p = 0; p < positions; p++)
            {
                sum += Kld.Divergence(_baseLogProbs[c].AsSpan(p * _vocab, _vocab), logits.AsSpan(p * _vocab, _vocab));
                count++;
            }
        }
        return count == 0 ? 0 : sum / count;
    }

    /// <summary>Turns rows of logits into log-probabilities (computed in double, stored as float).</summary>
    public static void LogSoftmaxInPlace(float[] logits, int vocab)
    {
        for (int r = 0; r < logits.Length / vocab; r++)
        {
            var row = logits.AsSpan(r * vocab, vocab);
            double max = double.NegativeInfinity;
            foreach (var v in row) if (v > max) max = v;
            double s = 0;
            foreach (var v in row) s += Math.Exp(v - max);
            double lse = max + Math.Log(s);
            for (int i = 0; i < row.Length; i++) row[i] = (float)(row[i] - lse);
        }
    }

    /// <summary>
    /// Calibration chunks from text: tokenized without special tokens, cut into chunks of <paramref name="chunkSize"/>
    /// tokens whose first token is BOS when the vocabulary adds one (as llama-perplexity does), at most
    /// <paramref name="maxChunks"/> of them, taken evenly from the whole text.
    /// </summary>
    public static IReadOnlyList<int[]> Chunks(GgufFile model, string text, int chunkSize, int maxChunks)
    {
        if (chunkSize < 2) throw new ArgumentOutOfRangeException(nameof(chunkSize), "chunks need at least 2 tokens");
        var tokenizer = Tokenizer.FromGguf(model);
        var tokens = tokenizer.Encode(Encoding.UTF8.GetBytes(text), addSpecial: false);
        int available = tokens.Length / chunkSize;
        if (available == 0) throw new InvalidInputException($"the calibration text has {tokens.Length} tokens; a chunk needs {chunkSize}");
        int take = Math.Min(available, maxChunks);
        var chunks = new List<int[]>(take);
        for (int i = 0; i < take; i++)
        {
            int start = (int)((long)i * available / take) * chunkSize;
            var chunk = tokens.AsSpan(start, chunkSize).ToArray();
            if (tokenizer.AddBos) chunk[0] = tokenizer.Bos;
            chunks.Add(chunk);
        }
        return chunks;
    }

    public void Dispose() { }
}

/// <summary>KL divergence between next-token distributions.</summary>
public static class Kld
{
    /// <summary>
    /// <c>Σ p_i (log p_i − log q_i)</c> with <paramref name="baseLogProbs"/> = log p already normalized and
    /// <paramref name="logits"/> the other model's raw logits (normalized here, in double).
    /// </summary>
    public static double Divergence(ReadOnlySpan<float> baseLogProbs, ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (var v in logits) if (v > max) max = v;
        double s = 0;
        foreach (var v in logits) s += Math.Exp(v - max);
        double lse = max + Math.Log(s);
        double kld = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            double lp = baseLogProbs[i];
            kld += Math.Exp(lp) * (lp - (logits[i] - lse));
        }
        return Math.Max(0, kld);
    }

    /// <summary>Mean KL divergence of every row of <paramref name="logits"/> against the matching row of <paramref name="baseLogProbs"/>.</summary>
    public static double Mean(float[] baseLogProbs, float[] logits, int vocab, int firstRow = 0)
    {
        int rows = logits.Length / vocab;
        double sum = 0;
        for (int r = firstRow; r < rows; r++) sum += Divergence(baseLogProbs.AsSpan(r * vocab, vocab), logits.AsSpan(r * vocab, vocab));
        return rows > firstRow ? sum / (rows - firstRow) : 0;
    }
}
