using System.Globalization;
using Squeeze.Models;
using Squeeze.Tokenizers;

namespace Squeeze.Evaluation.Tasks;

/// <summary>
/// HellaSwag as llama-perplexity's <c>hellaswag_score</c> scores it: each ending's sequence is tokenize(context + " " + ending);
/// its score is the mean log-probability of its tokens after the four sequences' common prefix (the first from the prefix's
/// last logits through <c>softmax()</c>, the rest through <c>compute_logprobs</c>); the best-scoring ending is right if it
/// is the gold one (acc_norm-style). Tasks are drawn in random order (std::mt19937 seeded with 1, without replacement),
/// even when all are used.
/// </summary>
public static class HellaSwag
{
    /// <summary>llama.cpp's default <c>--hellaswag-tasks</c>.</summary>
    public const int DefaultTasks = 400;

    /// <summary>The file indices llama.cpp scores, in its order: <c>min(count, available)</c> draws of
    /// <c>uniform_int_distribution(0, left - 1)</c> over the tasks not drawn yet (kept in file order).</summary>
    public static int[] SelectTasks(int available, int count)
    {
        int n = Math.Min(count, available);
        var rng = new Mt19937(1);
        var left = Enumerable.Range(0, available).ToList();
        var picked = new int[n];
        for (int i = 0; i < n; i++)
        {
            int idx = (int)rng.UniformIndex((ulong)left.Count);
            picked[i] = left[idx];
            left.RemoveAt(idx);
        }
        return picked;
    }

    /// <summary>
    /// Scores <paramref name="taskCount"/> tasks drawn from <paramref name="tasks"/>. <paramref name="output"/> receives
    /// llama.cpp's lines (<c>task  acc_norm  [95% interval]</c> per task).
    /// </summary>
    public static TaskScore Score(TransformerModel model, Tokenizer tokenizer, IReadOnlyList<HellaSwagTask> tasks, int taskCount,
        TaskRunOptions options, Action<string>? output = null, CancellationToken cancel = default)
    {
        if (taskCount < 1) throw new InvalidInputException($"the number of HellaSwag tasks must be at least 1, not {taskCount}");
        var selected = SelectTasks(tasks.Count, taskCount);
        var prepared = new TaskSequences[selected.Length];
        var firstTokens = new int[selected.Length][];
        for (int i = 0; i < selected.Length; i++)
        {
            var task = tasks[selected[i]];
            var seqs = new int[HellaSwagFile.EndingCount][];
            for (int j = 0; j < seqs.Length; j++) seqs[j] = TaskCommon.Tokenize(tokenizer, task.Context + " " + task.Endings[j]);
            prepared[i] = Prepare(seqs, i + 1);
        }

        output?.Invoke("task\tacc_norm\t95% confidence interval");
        var outcomes = new List<TaskOutcome>(selected.Length);
        double acc = 0, low = 0, high = 0;
        new TaskEvaluator(model, options).Evaluate(prepared, (i, results) =>
        {
            var t = prepared[i];
            var scores = new double[t.Sequences.Length];
            int q = 0;
            for (int s = 0; s < scores.Length; s++)
            {
                double sum = results[q++];
                int count = 1;
                for (int j = t.CommonPrefix; j < t.Sequences[s].Length - 1; j++) { sum += results[q++]; count++; }
                scores[s] = sum / count;
            }
            int best = 0;
            for (int s = 1; s < scores.Length; s++) if (scores[s] > scores[best]) best = s;
            int gold = tasks[selected[i]].Gold;
            if (best == gold) acc += 1;
            outcomes.Add(new TaskOutcome(selected[i], best, gold, best == gold, scores));
            (double freq, low, high) = Wilson(acc, i + 1);
            output?.Invoke(string.Create(CultureInfo.InvariantCulture, $"{i + 1}\t{freq * 100:F8}%\t[{low * 100:F4}%, {high * 100:F4}%]"));
        }, cancel);

        int n = outcomes.Count;
        double p = acc / n;
        return new TaskScore
        {
            Task = "hellaswag",
            Available = tasks.Count,
            Accuracy = 100 * p,
            Uncertainty = n > 1 ? 100 * Math.Sqrt(p * (1 - p) / (n - 1)) : double.NaN,
            IntervalLow = 100 * low,
            IntervalHigh = 100 * high,
            Outcomes = outcomes,
        };
    }

    /// <summary>The accuracy so far and llama.cpp's Wilson score interval (z = 1.95996398454) for it.</summary>
    public static (double Freq, double Low, double High) Wilson(double correct, int n)
    {
        const double za = 1.95996398454;
        double freq = correct / n;
        double z = za * za / n;
        double cnf = z * Math.Sqrt(n * (4.0 * freq * (1 - freq) + z)) / (za + za);
        return (freq, (freq + z * 0.5 - cnf) / (1.0 + z), (freq + z * 0.5 + cnf) / (1.0 + z));
    }

    /// <summary>The batch layout and requests of one task whose sequences share a prefix and are scored from the token
    /// after it to their end (HellaSwag and multiple choice).</summary>
    internal static TaskSequences Prepare(int[][] seqs, int taskNumber)
    {
        int cp = TaskCommon.CommonPrefix(seqs);
        TaskCommon.RequireSharedStart(cp, taskNumber);
        var requests = new List<LogProbRequest>();
        int row = 1;
        foreach (var s in seqs)
        {
            requests.Add(new LogProbRequest(0, TaskCommon.FirstAfterPrefix(s, cp), LogProbKind.Softmax));
            for (int j = cp; j < s.Length - 1; j++) requests.Add(new LogProbRequest(row++, s[j + 1], LogProbKind.Batch));
        }
        return new TaskSequences(seqs, cp, outputLastTokens: false, requests.ToArray());
    }
}
