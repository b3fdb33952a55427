using Squeeze.Numerics;

namespace Squeeze.Evaluation;

/// <summary>What one scored token contributes to the KL-divergence statistics.</summary>
/// <param name="Nll">−log p_Q(token), from the model's logits (float, as llama.cpp computes it).</param>
/// <param name="NllBase">−log p_base(token), from the base record.</param>
/// <param name="Kld">Σ p_base,i (log p_base,i − log p_Q,i) over the entries with log p_base,i &gt; −16.</param>
/// <param name="ProbabilityDelta">Δp = p_Q(token) − p_base(token).</param>
/// <param name="SameTop">Whether the most probable token is the same for both.</param>
public readonly record struct KlToken(float Nll, float NllBase, double Kld, float ProbabilityDelta, bool SameTop);

/// <summary>
/// The per-token arithmetic of llama-perplexity (tools/perplexity/perplexity.cpp at 815a2a591), with its float and
/// double choices kept so that Squeeze's numbers equal llama.cpp's: the uint16 encoding of a row of log-probabilities in
/// the KL base file, and the comparison of logits with such a record (plain negative log-likelihoods are
/// <see cref="Squeeze.Numerics.VectorOps.NegativeLogSoftmax"/>).
/// </summary>
public static class LogProbabilities
{
    /// <summary>
    /// Encodes the log-probabilities of <paramref name="logits"/> as one base-file record (<paramref name="record"/>:
    /// <see cref="LogitsFileHeader.RecordUInt16s"/> values: scale and minimum as floats, then one uint16 per entry,
    /// floor at max − 16) and returns −log p(token) as the writing path of llama-perplexity computes it.
    /// </summary>
    public static double Encode(ReadOnlySpan<float> logits, int token, Span<ushort> record)
    {
        int n = logits.Length;
        float max = logits[0], min = logits[0];
        for (int i = 1; i < n; i++)
        {
            max = Math.Max(max, logits[i]);
            min = Math.Min(min, logits[i]);
        }
        min = Math.Max(min, max - 16);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += MathF.Exp(logits[i] - max);
        float logSum = (float)Math.Log(sum);
        float minLogProb = min - max - logSum;
        float scale = (max - min) / 65535f;
        WriteFloat(record, 0, scale);
        WriteFloat(record, 2, minLogProb);
        var q = record.Slice(4, n);
        if (scale != 0)
        {
            float inverse = 1 / scale;
            for (int i = 0; i < n; i++) q[i] = logits[i] > min ? (ushort)GgmlRounding.NearestInt(inverse * (logits[i] - min)) : (ushort)0;
        }
        else q.Clear();
        record[(4 + n)..].Clear();
        return max + logSum - logits[token];
    }

    /// <summary>Compares the model's <paramref name="logits"/> with a base record at the scored <paramref name="token"/>.</summary>
    public static KlToken Compare(ReadOnlySpan<float> logits, ReadOnlySpan<ushort> record, int token)
    {
        int n = logits.Length;
        float max = logits[0];
        int top = 0;
        for (int i = 1; i < n; i++)
            if (logits[i] > max) { max = logits[i]; top = i; }
        double sum = 0;
        for (int i = 0; i < n; i++) sum += MathF.Exp(logits[i] - max);
        float logSum = (float)Math.Log(sum);
        float scale = ReadFloat(record, 0), minLogProb = ReadFloat(record, 2);
        var q = record.Slice(4, n);

        float nll = max + logSum - logits[token];
        float nllBase = -(scale * q[token] + minLogProb);

        float logNorm = max + logSum;
        double kld = 0;
        int topBase = -1;
        float topBaseLog = 0;
        for (int i = 0; i < n; i++)
        {
            float logBase = scale * q[i] + minLogProb;
            if (i == 0 || logBase > topBaseLog) { topBaseLog = logBase; topBase = i; }
            if (logBase > -16f)
            {
                float pBase = MathF.Exp(logBase);
                kld += pBase * (logBase - logits[i] + logNorm);
            }
        }
        float delta = MathF.Exp(-nll) - MathF.Exp(-nllBase);
        return new KlToken(nll, nllBase, kld, delta, top == topBase);
    }

    private static void WriteFloat(Span<ushort> record, int at, float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        record[at] = (ushort)bits;
        record[at + 1] = (ushort)(bits >> 16);
    }

    private static float ReadFloat(ReadOnlySpan<ushort> record, int at) =>
        BitConverter.UInt32BitsToSingle(record[at] | ((uint)record[at + 1] << 16));
}
