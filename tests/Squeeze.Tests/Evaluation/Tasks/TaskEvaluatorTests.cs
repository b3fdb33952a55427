using Squeeze.Evaluation.Tasks;
using Squeeze.Models;
using Xunit;

namespace Squeeze.Tests.Evaluation.Tasks;

/// <summary>The batched evaluator and the KV-cache sequence copy against plain one-sequence decoding.</summary>
public sealed class TaskEvaluatorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-evaluator-").FullName;
    private readonly TransformerModel _model;

    public TaskEvaluatorTests()
    {
        var path = Path.Combine(_dir, "m.gguf");
        // Q8_0 weights: their products give the same bits whatever the batch (tinyBLAS and vec_dot sum them alike), so
        // any difference from one-sequence decoding is the evaluator's. With F32 weights a batch of one token sums in
        // vec_dot's order and a larger one in tinyBLAS's, in llama.cpp as in Squeeze, so the bits depend on the micro-batches.
        SyntheticModel.Write(path, new SyntheticModelOptions { EmbeddingLength = 64, FeedForwardLength = 128, LayerCount = 2, HeadCount = 2, KvHeadCount = 1, VocabSize = 300, Seed = 3, WeightType = Squeeze.Quants.GgmlType.Q8_0 });
        _model = TransformerModel.Load(path);
    }

    public void Dispose()
    {
        _model.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private float[] Alone(int[] tokens) => new Transformer(_model, contextSize: tokens.Length, threads: 1).Evaluate(tokens);

    [Fact]
    public void A_copied_prefix_continues_like_the_whole_sequence()
    {
        int[] tokens = [1, 17, 42, 99, 5, 250, 7, 8];
        var t = new Transformer(_model, contextSize: 32, threads: 1);
        t.Evaluate(tokens[..5], sequence: 0);
        t.Cache.CopySequence(0, 3);
        Assert.Equal(10, t.Cache.Used);
        var continued = t.Evaluate(tokens[5..], startPosition: 5, sequence: 3);
        int vocab = _model.Hparams.VocabSize;
        Assert.Equal(Alone(tokens).AsSpan(5 * vocab).ToArray(), continued);
    }

    [Fact]
    public void Batched_requests_equal_log_probabilities_from_each_sequence_alone()
    {
        var rng = new Random(4);
        var tasks = new List<TaskSequences>();
        for (int i = 0; i < 9; i++)
        {
            int cp = 1 + rng.Next(12);
            var prefix = Enumerable.Range(0, cp).Select(_ => rng.Next(300)).ToArray();
            prefix[0] = 1;
            // Some sequences end inside or right after the prefix; one is the prefix itself.
            var seqs = Enumerable.Range(0, 2 + rng.Next(4)).Select(s => s == 0 ? prefix : prefix.Concat(Enumerable.Range(0, 1 + rng.Next(9)).Select(_ => rng.Next(300))).ToArray()).ToArray();
            var requests = new List<LogProbRequest> { new(0, 5, LogProbKind.Softmax) };
            int rows = 1 + seqs.Sum(s => Math.Max(0, s.Length - cp - 1));
            for (int r = 1; r < rows; r++) requests.Add(new(r, rng.Next(300), rng.Next(2) == 0 ? LogProbKind.Batch : LogProbKind.Softmax));
            tasks.Add(new TaskSequences(seqs, cp, outputLastTokens: false, requests.ToArray()));
        }
        var got = new float[tasks.Count][];
        new TaskEvaluator(_model, new TaskRunOptions { ContextSize = 16, MicroBatch = 7, Threads = 2 }).Evaluate(tasks, (i, r) => got[i] = r, TestContext.Current.CancellationToken);

        int vocab = _model.Hparams.VocabSize;
        for (int i = 0; i < tasks.Count; i++)
        {
            var t = tasks[i];
            // Row r's logits: row 0 is the prefix's last position; then each sequence's positions cp.. but its last.
            var rowLogits = new List<float[]> { Alone(t.Sequences[0])[((t.CommonPrefix - 1) * vocab)..(t.CommonPrefix * vocab)] };
            foreach (var s in t.Sequences)
            {
                var all = Alone(s);
                for (int p = t.CommonPrefix; p < s.Length - 1; p++) rowLogits.Add(all[(p * vocab)..((p + 1) * vocab)]);
            }
            for (int q = 0; q < t.Requests.Length; q++)
            {
                var r = t.Requests[q];
                float expected = r.Kind == LogProbKind.Batch ? LogProbs.Batch(rowLogits[r.Row], r.Token) : LogProbs.Softmax(rowLogits[r.Row], r.Token);
                Assert.Equal(expected, got[i][q]);
            }
        }
    }

    [Fact]
    public void A_task_larger_than_the_context_is_refused()
    {
        var task = new TaskSequences([[1, 2, 3, 4, 5], [1, 2, 3, 9, 9]], 3, false, [new(0, 4, LogProbKind.Softmax)]);
        var e = Assert.Throws<InvalidInputException>(() => new TaskEvaluator(_model, new TaskRunOptions { ContextSize = 1, Parallel = 1 }).Evaluate([task], (_, _) => { }, TestContext.Current.CancellationToken));
        Assert.Contains("task 1 does not fit in the context window of 4 tokens", e.Message);
        Assert.Equal(7, task.RequiredTokens);
    }
}
