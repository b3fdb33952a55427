using System.Text;
using Squeeze.Evaluation.Tasks;
using Squeeze.Models;
using Squeeze.Tests;
using Squeeze.Tokenizers;
using Xunit;

namespace Squeeze.Oracle.Tests.Evaluation;

/// <summary>
/// Task scores from Squeeze's batched scorers against the same tasks scored, llama-perplexity's way, from llama.cpp's own
/// tokens and logits (<see cref="TaskReference"/>); and against the reference fed with Squeeze's logits, which must agree
/// to float rounding (the batch layout, prefix copies and request bookkeeping add nothing).
/// </summary>
public sealed class TasksOracleTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-tasks-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Small sizes so that tasks are split into several groups and micro-batches.
    private static readonly TaskRunOptions Run = new() { ContextSize = 96, Parallel = 4, MicroBatch = 48, Threads = 2 };

    internal const string HandHellaSwag = """
        Playing outside: Lily went to the park with her mom. She
        0
        saw a big red ball and ran to get it.
        ate the green sky and the moon.
        was a little car that could not talk.
        said the sun is a cat.
        Baking: Tom and his mom made a cake. The cake
        3
        is happy
        is happy.
        is happy and sad
        was very yummy and they ate it all.
        Toys: Sue had a new doll. She
        1
        gave it a hug
        gave it a hug and a kiss every day
        gave the dog a bath in the tub
        did not like the big, loud truck
        Friends: The bird and the dog were friends. One day
        2
        the dog
        the bird flew away.
        they played in the park all day.
        the tree said hello.

        """;

    internal const string HandWinoGrande = """
        index,sentence,choice1,choice2,answer
        0,Tom gave the ball to Sam because _ was tired of playing with it all day long.,Tom,Sam,1
        1,"The dog chased the cat, so _ ran.",dog,cat,2
        2,Lily and Lil went home and _ slept.,Lily,Lil,1
        3,_ was happy because the sun was out and the birds were singing in the trees.,Lily,Tom,1
        4,"The mom gave the girl a cookie, because _ was hungry after school.",mom,girl,2
        5,The big dog could not fit in the box because _ was too small for it.,box,dog,1


        """;

    internal static IReadOnlyList<MultipleChoiceTask> HandMultipleChoice() =>
    [
        new("What color is the sky?", new(["blue", "green", "the sky is blue", "red"], [1, 0, 0, 0]), MultipleChoiceAnswers.Empty),
        new("Lily saw", new(["a big dog", "a big dog and a cat"], [0, 1]), new(["a big dog", "a cat"], [1, 1])),
        new("The little girl was very", new(["happy", "sad", "tired", "hungry", "angry", "big"], [0, 0, 1, 0, 0, 0]), MultipleChoiceAnswers.Empty),
        new("Once upon a time, there was a", new(["little girl named Lily.", "big, red ball.", "car"], [1, 0, 0]), MultipleChoiceAnswers.Empty),
    ];

    public static TheoryData<string> Models() => new("stories260K", "synthetic");

    private string ModelPath(string name)
    {
        if (name == "stories260K") return TestData.StoriesModel;
        var path = Path.Combine(_dir, "synthetic.gguf");
        if (!File.Exists(path))
            SyntheticModel.Write(path, new SyntheticModelOptions
            {
                Spec = ArchitectureSpec.Find("llama")!, EmbeddingLength = 128, FeedForwardLength = 256, LayerCount = 2,
                HeadCount = 4, KvHeadCount = 2, VocabSize = 512, ContextLength = 256, Seed = 11,
            });
        return path;
    }

    private sealed class Sides : IDisposable
    {
        public required TransformerModel Model;
        public required Tokenizer Tokenizer;
        public required OracleModel Oracle;
        public required OracleVocab Vocab;
        public required TaskReference Llama;
        public required TaskReference Squeeze;

        public void Dispose()
        {
            Oracle.Dispose();
            Vocab.Dispose();
            Model.Dispose();
        }
    }

    private Sides Open(string name)
    {
        var path = ModelPath(name);
        var model = TransformerModel.Load(path);
        var tokenizer = Tokenizer.FromGguf(model.File);
        var oracle = new OracleModel(path, contextSize: 512, batchSize: 512);
        var vocab = OracleVocab.Load(path);
        int n = model.Hparams.VocabSize;
        var llama = new TaskReference(TaskReference.Utf8(b => vocab.Tokenize(b, addSpecial: true, parseSpecial: false)), tokens =>
        {
            oracle.ClearCache();
            return oracle.Decode(tokens, 0, allLogits: true);
        }, n);
        var squeeze = new TaskReference(text => tokenizer.Encode(text, addSpecial: true, parseSpecial: false),
            tokens => new Transformer(model, contextSize: tokens.Length, threads: 2).Evaluate(tokens), n);
        return new Sides { Model = model, Tokenizer = tokenizer, Oracle = oracle, Vocab = vocab, Llama = llama, Squeeze = squeeze };
    }

    /// <summary>
    /// Squeeze's batched scores equal the reference that decodes each sequence alone with Squeeze, and llama.cpp's within
    /// its logits' distance from Squeeze's; the choice made is llama.cpp's wherever its best score leads by more than that
    /// distance. Batched and alone are not bit-identical: like llama.cpp, Squeeze's attention takes ggml's tiled
    /// flash-attention path (f32 values) for 64 tokens or more and the per-cell path (fp16 values) below, so packing
    /// sequences together changes the last bits of every logit (measured up to 1.6e-4 relative on a task score here,
    /// where a scoring mistake, a wrong token or offset, moves a score by whole nats).
    /// </summary>
    private static void AssertScores(TaskScore score, Func<int, double[]> llama, Func<int, double[]> squeeze, int expectedCount)
    {
        Assert.Equal(expectedCount, score.Tasks);
        int decided = 0;
        foreach (var o in score.Outcomes)
        {
            var own = squeeze(o.Source);
            var theirs = llama(o.Source);
            Assert.Equal(theirs.Length, o.Scores.Count);
            for (int k = 0; k < own.Length; k++)
            {
                Assert.True(Math.Abs(own[k] - o.Scores[k]) <= 5e-4 * Math.Max(1, Math.Abs(own[k])) || (double.IsNaN(own[k]) && double.IsNaN(o.Scores[k])),
                    $"task {o.Source} choice {k}: batched {o.Scores[k]} vs Squeeze alone {own[k]}");
                Assert.True(Math.Abs(theirs[k] - o.Scores[k]) <= 2e-3 * Math.Max(1, Math.Abs(theirs[k])) || (double.IsNaN(theirs[k]) && double.IsNaN(o.Scores[k])),
                    $"task {o.Source} choice {k}: Squeeze {o.Scores[k]} vs llama.cpp {theirs[k]}");
            }
            var order = theirs.Select((v, i) => (v, i)).OrderByDescending(x => x.v).ToArray();
            if (order.Length > 1 && order[0].v - order[1].v > 5e-3)
            {
                decided++;
                Assert.Equal(order[0].i, o.Predicted);
            }
        }
        Assert.True(decided > 0, "no task had a clear winner: the test would not notice a wrong choice");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void HellaSwag_scores_equal_llama_cpps(string name)
    {
        using var s = Open(name);
        var tasks = HellaSwagFile.Parse(HandHellaSwag);
        var score = HellaSwag.Score(s.Model, s.Tokenizer, tasks, 100, Run, cancel: TestContext.Current.CancellationToken);
        Assert.Equal(HellaSwag.SelectTasks(tasks.Count, 100), score.Outcomes.Select(o => o.Source));
        AssertScores(score, i => s.Llama.HellaSwag(tasks[i]), i => s.Squeeze.HellaSwag(tasks[i]), tasks.Count);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void WinoGrande_scores_equal_llama_cpps(string name)
    {
        using var s = Open(name);
        var data = WinoGrandeFile.Parse(HandWinoGrande);
        Assert.Equal(6, data.Tasks.Count);
        Assert.Empty(data.Notes);
        var score = WinoGrande.Score(s.Model, s.Tokenizer, data, 0, Run, cancel: TestContext.Current.CancellationToken);
        AssertScores(score, i => s.Llama.WinoGrande(data.Tasks[i]), i => s.Squeeze.WinoGrande(data.Tasks[i]), 6);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Multiple_choice_scores_equal_llama_cpps(string name)
    {
        using var s = Open(name);
        var tasks = MultipleChoiceFile.Parse(MultipleChoiceFile.Format(HandMultipleChoice()));
        var score = MultipleChoice.Score(s.Model, s.Tokenizer, tasks, 0, Run, cancel: TestContext.Current.CancellationToken);
        AssertScores(score, i => s.Llama.MultipleChoice(tasks[i]), i => s.Squeeze.MultipleChoice(tasks[i]), tasks.Count);
        Assert.Equal(100.0 * tasks.Count / tasks.Sum(t => t.Mc1.Answers.Count), score.RandomChance!.Value, 3);
    }

    /// <summary>A few real tasks of every set in ../shared/data/eval, converted by Squeeze, scored on stories260K.</summary>
    [Fact]
    public void Real_tasks_score_as_in_llama_cpp()
    {
        using var s = Open("stories260K");
        string eval = TestData.Require("eval");
        var ct = TestContext.Current.CancellationToken;

        var hellaSwag = Squeeze.Evaluation.Datasets.DatasetConverter.Load(Path.Combine(eval, "hellaswag", "hellaswag_val_full.txt.gz")).HellaSwag!.Take(5).ToList();
        var hs = HellaSwag.Score(s.Model, s.Tokenizer, hellaSwag, 5, Run, cancel: ct);
        AssertScores(hs, i => s.Llama.HellaSwag(hellaSwag[i]), i => s.Squeeze.HellaSwag(hellaSwag[i]), 5);

        var wg = Squeeze.Evaluation.Datasets.DatasetConverter.Load(Path.Combine(eval, "winogrande", "dev.jsonl"),
            labels: Path.Combine(eval, "winogrande", "dev-labels.lst")).WinoGrande!;
        var wgFile = Path.Combine(_dir, "wg.csv");
        WinoGrandeFile.Write(wgFile, wg);
        var wgData = WinoGrandeFile.Read(wgFile);
        Assert.Equal(1267, wgData.Tasks.Count);
        var wgScore = WinoGrande.Score(s.Model, s.Tokenizer, wgData, 8, Run, cancel: ct);
        Assert.Equal(WinoGrande.SelectTasks(1267, 8), wgScore.Outcomes.Select(o => o.Source));
        AssertScores(wgScore, i => s.Llama.WinoGrande(wgData.Tasks[i]), i => s.Squeeze.WinoGrande(wgData.Tasks[i]), 8);

        foreach (var set in new[] { Path.Combine(eval, "mmlu", "dev"), Path.Combine(eval, "truthfulqa", "mc_task.json") })
        {
            var mcFile = Path.Combine(_dir, "mc.bin");
            Squeeze.Evaluation.Datasets.DatasetConverter.Write(Squeeze.Evaluation.Datasets.DatasetConverter.Load(set), mcFile);
            var mc = MultipleChoiceFile.Read(mcFile);
            var score = MultipleChoice.Score(s.Model, s.Tokenizer, mc, 4, Run with { ContextSize = 512 }, cancel: ct);
            Assert.Equal(MultipleChoice.SelectTasks(mc.Count, 4), score.Outcomes.Select(o => o.Source));
            AssertScores(score, i => s.Llama.MultipleChoice(mc[i]), i => s.Squeeze.MultipleChoice(mc[i]), 4);
        }
    }
}
