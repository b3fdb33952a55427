using Squeeze.Tokenizers;

namespace Squeeze.Evaluation.Tasks;

/// <summary>One scored task: its index in the file, the choice with the best score, the right one (choices counted from 0),
/// and every choice's score (mean log-probability).</summary>
public sealed record TaskOutcome(int Source, int Predicted, int Expected, bool Correct, IReadOnlyList<double> Scores);

/// <summary>
/// A task run's result as llama-perplexity reports it. <see cref="Accuracy"/> and <see cref="Uncertainty"/> are percentages;
/// the uncertainty is the standard error 100·sqrt(p(1-p)/(n-1)) (llama.cpp's WinoGrande and multiple-choice figure; for
/// HellaSwag llama.cpp prints the Wilson 95% interval, in <see cref="IntervalLow"/>..<see cref="IntervalHigh"/>).
/// </summary>
public sealed record TaskScore
{
    /// <summary>hellaswag, winogrande or multiple-choice.</summary>
    public required string Task { get; init; }

    /// <summary>Tasks in the file.</summary>
    public required int Available { get; init; }

    /// <summary>Tasks scored.</summary>
    public int Tasks => Outcomes.Count;

    public int Correct => Outcomes.Count(o => o.Correct);
    public required double Accuracy { get; init; }
    public required double Uncertainty { get; init; }
    public double? IntervalLow { get; init; }
    public double? IntervalHigh { get; init; }

    /// <summary>Multiple choice: the accuracy of guessing (tasks / answers) and its uncertainty, in percent.</summary>
    public double? RandomChance { get; init; }
    public double? RandomChanceUncertainty { get; init; }

    public required IReadOnlyList<TaskOutcome> Outcomes { get; init; }

    /// <summary>Remarks on the input (lines llama.cpp would not read, ...).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>What the three task scorers share: tokenizing as <c>common_tokenize(ctx, text, true)</c>, the common prefix, sampling.</summary>
internal static class TaskCommon
{
    public static int[] Tokenize(Tokenizer tokenizer, string text) => tokenizer.Encode(text, addSpecial: true, parseSpecial: false);

    /// <summary>Leading tokens all sequences share.</summary>
    public static int CommonPrefix(IReadOnlyList<int[]> sequences)
    {
        int min = sequences.Min(s => s.Length);
        int k = 0;
        for (; k < min; k++)
        {
            int token = sequences[0][k];
            bool same = true;
            for (int s = 1; s < sequences.Count && same; s++) same = sequences[s][k] == token;
            if (!same) break;
        }
        return k;
    }

    /// <summary>
    /// The token after the common prefix in <paramref name="sequence"/>. When a sequence lies entirely inside the prefix
    /// (one answer's tokens begin another's), llama.cpp reads one element past the end of its token vector, where
    /// <c>common_tokenize</c> has left a zero: token 0 is what it scores then, and so does Squeeze.
    /// </summary>
    public static int FirstAfterPrefix(int[] sequence, int commonPrefix) => commonPrefix < sequence.Length ? sequence[commonPrefix] : 0;

    public static void RequireSharedStart(int commonPrefix, int task)
    {
        if (commonPrefix == 0)
            throw new InvalidInputException($"task {task}: its sequences share no leading token (the model adds no BOS and the texts start differently); llama-perplexity's scoring needs one");
    }

    /// <summary>WinoGrande's and multiple choice's sampling: <paramref name="count"/> of <paramref name="available"/> indices,
    /// each drawn by <see cref="Mt19937.ScaledIndex"/> from those left, the drawn slot refilled with the last one.</summary>
    public static int[] SampleScaled(int available, int count)
    {
        var rng = new Mt19937(1);
        var aux = Enumerable.Range(0, available).ToList();
        var picked = new int[count];
        for (int i = 0; i < count; i++)
        {
            int j = rng.ScaledIndex(aux.Count);
            picked[i] = aux[j];
            aux[j] = aux[^1];
            aux.RemoveAt(aux.Count - 1);
        }
        return picked;
    }

    /// <summary>100·sqrt(p(1-p)/(n-1)) in float, as llama.cpp prints it.</summary>
    public static float Sigma(float p, int n) => n > 1 ? 100f * (float)Math.Sqrt(p * (1 - p) / (n - 1)) : float.NaN;
}
