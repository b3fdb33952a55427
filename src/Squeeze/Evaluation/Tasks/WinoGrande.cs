using System.Globalization;
using Squeeze.Models;
using Squeeze.Tokenizers;

namespace Squeeze.Evaluation.Tasks;

/// <summary>
/// WinoGrande as llama-perplexity's <c>winogrande_score</c> scores it. Sequence k is tokenize(first + choice_k + second).
/// When both sequences have more than 3 tokens after their common prefix, only the tokens after the choice word are scored
/// (partial scoring: from the end of tokenize(first + choice_k)); otherwise every token after the prefix. The final token is
/// left out when more than one would be scored; a choice's score is the mean log-probability (float); choice 1 wins only
/// when its score is strictly higher.
/// llama.cpp's known slip is kept: when the choice word is scored, the first token of the second sequence is predicted
/// from the logits of the first sequence's last token (its FIXME), so scores equal its scores.
/// </summary>
public static class WinoGrande
{
    /// <summary>Tokens after the common prefix that both sequences need for partial scoring to apply (more than this).</summary>
    public const int MinTrailingContext = 3;

    /// <summary>The file indices llama.cpp scores: all in file order when <paramref name="count"/> is 0 or at least the
    /// number available, else <paramref name="count"/> drawn by its float-scaled std::mt19937 sampling.</summary>
    public static int[] SelectTasks(int available, int count) =>
        count > 0 && count < available ? TaskCommon.SampleScaled(available, count) : Enumerable.Range(0, available).ToArray();

    public static TaskScore Score(TransformerModel model, Tokenizer tokenizer, WinoGrandeData data, int taskCount,
        TaskRunOptions options, Action<string>? output = null, CancellationToken cancel = default)
    {
        if (taskCount < 0) throw new InvalidInputException($"the number of WinoGrande tasks must be 0 (all) or more, not {taskCount}");
        var tasks = data.Tasks;
        var selected = SelectTasks(tasks.Count, taskCount);
        var prepared = new Prepared[selected.Length];
        for (int i = 0; i < selected.Length; i++) prepared[i] = Prepare(tokenizer, tasks[selected[i]], i + 1);

        var outcomes = new List<TaskOutcome>(selected.Length);
        int correct = 0;
        new TaskEvaluator(model, options).Evaluate(prepared.Select(p => p.Task).ToArray(), (i, results) =>
        {
            var t = prepared[i];
            float score1 = 0, score2 = 0;
            int q = 0;
            for (int k = 0; k < t.Count1; k++) score1 += results[q++];
            for (int k = 0; k < t.Count2; k++) score2 += results[q++];
            score1 = Mean(score1, t.Task.Sequences[0].Length, t.Base1);
            score2 = Mean(score2, t.Task.Sequences[1].Length, t.Base2);
            int result = score1 > score2 ? 1 : 2;
            var task = tasks[selected[i]];
            if (result == task.Answer) correct++;
            outcomes.Add(new TaskOutcome(selected[i], result - 1, task.Answer - 1, result == task.Answer, [score1, score2]));
            output?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"{i + 1}\t{100.0 * correct / outcomes.Count:F4}\t{score1,10:F6}  {score2,10:F6}  {result}  {task.Answer}"));
        }, cancel);

        int n = outcomes.Count;
        float p = 1f * correct / n;
        float sigma = TaskCommon.Sigma(p, n);
        output?.Invoke(string.Create(CultureInfo.InvariantCulture, $"Final Winogrande score({n} tasks): {100 * p:F4} +/- {sigma:F4}"));
        return new TaskScore
        {
            Task = "winogrande",
            Available = tasks.Count,
            Accuracy = 100 * p,
            Uncertainty = sigma,
            Outcomes = outcomes,
            Notes = data.Notes,
        };
    }

    /// <summary>A task's batch layout, the number of scored tokens per choice and where scoring starts.</summary>
    internal sealed record Prepared(TaskSequences Task, int Count1, int Count2, int Base1, int Base2);

    /// <summary>The mean as llama.cpp divides: by (length - base - last) in size_t, so a base past the end gives 0, an empty range NaN.</summary>
    private static float Mean(float sum, int length, int nBase)
    {
        long tail = length - nBase;
        int last = tail > 1 || tail < 0 ? 1 : 0; // size_t: a negative difference is huge
        long count = tail - last;
        return count < 0 ? sum / (float)(ulong)count : sum / count;
    }

    /// <summary>One task's layout (every token after the prefix is an output row) and llama.cpp's eval pairs, including
    /// its row arithmetic for the second sequence.</summary>
    internal static Prepared Prepare(Tokenizer tokenizer, WinoGrandeTask task, int taskNumber)
    {
        int[] seq0 = TaskCommon.Tokenize(tokenizer, task.First + task.Choice1 + task.Second);
        int[] seq1 = TaskCommon.Tokenize(tokenizer, task.First + task.Choice2 + task.Second);
        int cp = TaskCommon.CommonPrefix([seq0, seq1]);
        TaskCommon.RequireSharedStart(cp, taskNumber);
        int base1 = TaskCommon.Tokenize(tokenizer, task.First + task.Choice1).Length;
        int base2 = TaskCommon.Tokenize(tokenizer, task.First + task.Choice2).Length;
        bool skipChoice = seq0.Length - cp > MinTrailingContext && seq1.Length - cp > MinTrailingContext;
        // llama.cpp reads rows before the task's own when the choice's base is inside the common prefix; such a base
        // is taken as the prefix here (it only happens when tokenize(first + choice) is shorter than the shared part).
        int nb1 = skipChoice ? Math.Max(base1, cp) : cp;
        int nb2 = skipChoice ? Math.Max(base2, cp) : cp;
        var requests = new List<LogProbRequest>();
        int n1 = Pairs(requests, seq0, nb1, nb1 - cp);
        int n2 = Pairs(requests, seq1, nb2, seq0.Length - cp + nb2 - cp);
        return new Prepared(new TaskSequences([seq0, seq1], cp, outputLastTokens: true, requests.ToArray()), n1, n2, nb1, nb2);
    }

    private static int Pairs(List<LogProbRequest> requests, int[] seq, int nBase, int firstRow)
    {
        int tail = seq.Length - nBase;
        int last = tail > 1 || tail < 0 ? 1 : 0;
        int n = 0;
        for (int j = nBase - 1; j < seq.Length - 1 - last; j++, n++) requests.Add(new LogProbRequest(firstRow + n, seq[j + 1], LogProbKind.Batch));
        return n;
    }
}
