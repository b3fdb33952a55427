namespace Squeeze.Evaluation.Tasks;

/// <summary>Which of llama-perplexity's two formulas turns a logits row into a token's log-probability.</summary>
public enum LogProbKind
{
    /// <summary><c>compute_logprobs</c>: float max, a float sum of <c>expf</c>, then <c>logit - max - logf(sum)</c>.</summary>
    Batch,

    /// <summary><c>softmax()</c> then <c>std::log</c>: a double sum of float <c>expf</c>, the float probability
    /// <c>expf(logit - max) / sum</c>, then <c>logf</c> of it (used for the first token after the shared prefix).</summary>
    Softmax,
}

/// <summary>llama-perplexity's log-probability formulas, with its float and double choices.</summary>
public static class LogProbs
{
    public static float Max(ReadOnlySpan<float> logits)
    {
        float max = logits[0];
        for (int i = 1; i < logits.Length; i++) if (max < logits[i]) max = logits[i];
        return max;
    }

    /// <summary><see cref="LogProbKind.Batch"/>: <c>compute_logprobs</c> for one token.</summary>
    public static float Batch(ReadOnlySpan<float> logits, int token) => Batch(logits, token, Max(logits), FloatSum(logits, Max(logits)));

    /// <summary><see cref="LogProbKind.Softmax"/>: the log of <c>softmax()</c>'s float probability.</summary>
    public static float Softmax(ReadOnlySpan<float> logits, int token) => Softmax(logits, token, Max(logits), DoubleSum(logits, Max(logits)));

    internal static float FloatSum(ReadOnlySpan<float> logits, float max)
    {
        float sum = 0f;
        for (int i = 0; i < logits.Length; i++) sum += MathF.Exp(logits[i] - max);
        return sum;
    }

    internal static double DoubleSum(ReadOnlySpan<float> logits, float max)
    {
        double sum = 0.0;
        for (int i = 0; i < logits.Length; i++) sum += MathF.Exp(logits[i] - max);
        return sum;
    }

    internal static float Batch(ReadOnlySpan<float> logits, int token, float max, float floatSum) => logits[token] - max - MathF.Log(floatSum);

    internal static float Softmax(ReadOnlySpan<float> logits, int token, float max, double doubleSum)
    {
        float p = (float)(MathF.Exp(logits[token] - max) / doubleSum);
        return MathF.Log(p);
    }
}
