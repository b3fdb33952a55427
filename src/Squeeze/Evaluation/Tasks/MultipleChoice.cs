using System.Globalization;
using Squeeze.Models;
using Squeeze.Tokenizers;

namespace Squeeze.Evaluation.Tasks;

/// <summary>
/// Multiple-choice tasks (ARC, MMLU, TruthfulQA, HellaSwag in llama.cpp's binary format) as llama-perplexity's
/// <c>multiple_choice_score</c> scores them: each mc1 answer's sequence is tokenize(question + " " + answer); its score is
/// the mean log-probability (float) of its tokens after the answers' common prefix; the task is right when the best
/// answer is labelled 1. mc2 is not scored.
/// </summary>
public static class MultipleChoice
{
    /// <summary>All tasks in file order when <paramref name="count"/> is 0 or at least the number available, else
    /// <paramref name="count"/> drawn by llama.cpp's float-scaled std::mt19937 sampling.</summary>
    public static int[] SelectTasks(int available, int count) =>
        count > 0 && count < available ? TaskCommon.SampleScaled(available, count) : Enumerable.Range(0, available).ToArray();

    public static TaskScore Score(TransformerModel model, Tokenizer tokenizer, IReadOnlyList<MultipleChoiceTask> tasks, int taskCount,
        TaskRunOptions options, Action<string>? output = null, CancellationToken cancel = default)
    {
        if (taskCount < 0) throw new InvalidInputException($"the number of multiple-choice tasks must be 0 (all) or more, not {taskCount}");
        var selected = SelectTasks(tasks.Count, taskCount);
        var prepared = new TaskSequences[selected.Length];
        for (int i = 0; i < selected.Length; i++)
        {
            var task = tasks[selected[i]];
            var seqs = task.Mc1.Answers.Select(a => TaskCommon.Tokenize(tokenizer, task.Question + " " + a)).ToArray();
            prepared[i] = HellaSwag.Prepare(seqs, i + 1);
        }

        output?.Invoke("task\tacc_norm");
        var outcomes = new List<TaskOutcome>(selected.Length);
        int correct = 0, answers = 0;
        new TaskEvaluator(model, options).Evaluate(prepared, (i, results) =>
        {
            var t = prepared[i];
            var scores = new double[t.Sequences.Length];
            float bestValue = 0;
            int best = 0, q = 0;
            for (int s = 0; s < scores.Length; s++)
            {
                float logProb = results[q++];
                int count = 1;
                for (int j = t.CommonPrefix; j < t.Sequences[s].Length - 1; j++) { logProb += results[q++]; count++; }
                float score = logProb / count;
                scores[s] = score;
                if (s == 0 || score > bestValue) { best = s; bestValue = score; }
            }
            var labels = tasks[selected[i]].Mc1.Labels;
            bool right = labels[best] == 1;
            if (right) correct++;
            answers += scores.Length;
            outcomes.Add(new TaskOutcome(selected[i], best, labels.ToList().IndexOf(1), right, scores));
            output?.Invoke(string.Create(CultureInfo.InvariantCulture, $"{outcomes.Count}\t{100.0 * correct / outcomes.Count:F8}"));
        }, cancel);

        int n = outcomes.Count;
        float p = 1f * correct / n;
        float sigma = TaskCommon.Sigma(p, n);
        float chance = 1f * n / answers;
        float chanceSigma = TaskCommon.Sigma(chance, n);
        output?.Invoke(string.Create(CultureInfo.InvariantCulture, $"Final result: {100f * p:F4} +/- {sigma:F4}"));
        output?.Invoke(string.Create(CultureInfo.InvariantCulture, $"Random chance: {100f * chance:F4} +/- {chanceSigma:F4}"));
        return new TaskScore
        {
            Task = "multiple-choice",
            Available = tasks.Count,
            Accuracy = 100f * p,
            Uncertainty = sigma,
            RandomChance = 100f * chance,
            RandomChanceUncertainty = chanceSigma,
            Outcomes = outcomes,
        };
    }
}
