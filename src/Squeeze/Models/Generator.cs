namespace Squeeze.Models;

/// <summary>
/// Generates tokens from a prompt: greedy at temperature 0 (the argmax, lowest id on ties), otherwise sampled from
/// softmax(logits / temperature) with a seeded generator, so the same seed gives the same text.
/// </summary>
public sealed class Generator(Transformer transformer, float temperature = 0f, int seed = 0)
{
    private readonly Random _random = new(seed);

    /// <summary>
    /// Decodes <paramref name="prompt"/> in one batch, then yields up to <paramref name="maxTokens"/> new tokens, one
    /// decode each, stopping after a token for which <paramref name="stop"/> is true or when the context is full.
    /// </summary>
    public IEnumerable<int> Generate(IReadOnlyList<int> prompt, int maxTokens, Func<int, bool>? stop = null)
    {
        if (prompt.Count == 0) throw new ArgumentException("the prompt needs at least one token", nameof(prompt));
        int capacity = transformer.Cache.Capacity - transformer.Cache.Used;
        if (prompt.Count > capacity) throw new InvalidInputException($"the prompt has {prompt.Count} tokens; the context holds {capacity}");
        var logits = transformer.Evaluate(prompt, startPosition: 0, allLogits: false);
        int position = prompt.Count;
        for (int i = 0; i < maxTokens; i++)
        {
            int token = Pick(logits);
            yield return token;
            if (stop?.Invoke(token) == true || position >= transformer.Cache.Capacity) yield break;
            logits = transformer.Evaluate([token], position++);
        }
    }

    private int Pick(ReadOnlySpan<float> logits)
    {
        if (temperature <= 0f)
        {
            int best = 0;
            for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
            return best;
        }
        float max = float.NegativeInfinity;
        foreach (float l in logits) max = Math.Max(max, l);
        var p = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < p.Length; i++) sum += p[i] = Math.Exp((logits[i] - max) / temperature);
        double r = _random.NextDouble() * sum;
        for (int i = 0; i < p.Length; i++)
        {
            r -= p[i];
            if (r <= 0) return i;
        }
        return p.Length - 1;
    }
}
