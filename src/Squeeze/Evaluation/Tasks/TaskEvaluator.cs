using Squeeze.Models;
using Squeeze.Numerics;

namespace Squeeze.Evaluation.Tasks;

/// <summary>A log-probability wanted from one output row of a task: of <see cref="Token"/>, by <see cref="Kind"/>'s formula.</summary>
public readonly record struct LogProbRequest(int Row, int Token, LogProbKind Kind);

/// <summary>
/// One task's sequences as llama-perplexity lays them out in a batch: the common prefix once (the logits of its last
/// token are output row 0), then each sequence's remaining tokens in order, each an output row unless it is a
/// sequence's last token and <see cref="OutputLastTokens"/> is false. <see cref="Requests"/> name rows in that numbering.
/// </summary>
public sealed class TaskSequences
{
    public TaskSequences(int[][] sequences, int commonPrefix, bool outputLastTokens, LogProbRequest[] requests)
    {
        if (sequences.Length == 0) throw new ArgumentException("a task needs at least one sequence", nameof(sequences));
        if (commonPrefix < 1) throw new ArgumentOutOfRangeException(nameof(commonPrefix), commonPrefix, "the sequences must share at least one token");
        foreach (var s in sequences)
            if (s.Length < commonPrefix) throw new ArgumentException("a sequence is shorter than the common prefix", nameof(sequences));
        Sequences = sequences;
        CommonPrefix = commonPrefix;
        OutputLastTokens = outputLastTokens;
        Requests = requests;
        int rows = 1;
        foreach (var s in sequences) rows += Math.Max(0, s.Length - commonPrefix - (outputLastTokens ? 0 : 1));
        RowCount = rows;
        foreach (var r in requests)
            if ((uint)r.Row >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(requests), r.Row, $"row outside the task's {rows} output rows");
    }

    public int[][] Sequences { get; }
    public int CommonPrefix { get; }
    public bool OutputLastTokens { get; }
    public LogProbRequest[] Requests { get; }
    public int RowCount { get; }

    /// <summary>Tokens llama.cpp puts in the batch for this task (the prefix once): what must fit in its context.</summary>
    public int RequiredTokens => CommonPrefix + Sequences.Sum(s => s.Length - CommonPrefix);

    /// <summary>Cache cells the task takes here, where each sequence holds its own copy of the prefix.</summary>
    internal int Cells => Sequences.Sum(s => s.Length);
}

/// <summary>Sizes of a task run, as llama-perplexity sets them.</summary>
public sealed record TaskRunOptions
{
    /// <summary><c>-c</c>: context per sequence (default 512).</summary>
    public int ContextSize { get; init; } = 512;

    /// <summary><c>-np</c>: parallel sequences; task modes use at least 4. The batch context is ContextSize x this.</summary>
    public int Parallel { get; init; } = 4;

    /// <summary>Tokens per forward pass (llama.cpp's micro-batch, 512 by default); bounds the memory of the logits.</summary>
    public int MicroBatch { get; init; } = 512;

    public int Threads { get; init; } = Workers.DefaultThreads;

    /// <summary>llama-perplexity's context for task modes: ContextSize x max(4, Parallel).</summary>
    public int TotalContext => checked(ContextSize * Math.Max(4, Parallel));
}

/// <summary>
/// Decodes many tasks' sequences with their shared prefixes decoded once, and answers each task's log-probability
/// requests. Tasks are grouped to fill the cache; per group the prefixes are decoded (each in its task's first sequence),
/// copied to the task's other sequences, then every sequence's own tokens are decoded. Results are the same as decoding
/// each sequence alone: attention only sees a token's own sequence.
/// </summary>
public sealed class TaskEvaluator
{
    private readonly TransformerModel _model;
    private readonly TaskRunOptions _options;

    public TaskEvaluator(TransformerModel model, TaskRunOptions options)
    {
        if (options.ContextSize < 1) throw new InvalidInputException($"the context size must be at least 1, not {options.ContextSize}");
        if (options.MicroBatch < 1) throw new InvalidInputException($"the batch size must be at least 1, not {options.MicroBatch}");
        if (options.Threads < 1) throw new InvalidInputException($"threads must be at least 1, not {options.Threads}");
        _model = model;
        _options = options;
    }

    /// <summary>Evaluates <paramref name="tasks"/> in order; <paramref name="onTask"/>(index, results) gets each task's
    /// request results (in request order) as soon as its group is done, in task order.</summary>
    public void Evaluate(IReadOnlyList<TaskSequences> tasks, Action<int, float[]> onTask, CancellationToken cancel = default)
    {
        if (tasks.Count == 0) return;
        int total = _options.TotalContext;
        int vocab = _model.Hparams.VocabSize;
        int capacity = total;
        for (int i = 0; i < tasks.Count; i++)
        {
            if (tasks[i].RequiredTokens > total)
                throw new InvalidInputException($"task {i + 1} does not fit in the context window of {total} tokens (-c x max(4, -np)): it needs {tasks[i].RequiredTokens}");
            foreach (var s in tasks[i].Sequences)
                foreach (int t in s)
                    if ((uint)t >= (uint)vocab) throw new InvalidInputException($"task {i + 1}: token {t} is outside the model's vocabulary of {vocab}");
            capacity = Math.Max(capacity, tasks[i].Cells);
        }
        var transformer = new Transformer(_model, contextSize: capacity, threads: _options.Threads);

        for (int i0 = 0; i0 < tasks.Count;)
        {
            cancel.ThrowIfCancellationRequested();
            int i1 = i0, cells = 0;
            while (i1 < tasks.Count && cells + tasks[i1].Cells <= capacity) cells += tasks[i1++].Cells;
            var results = RunGroup(transformer, tasks, i0, i1, cancel);
            for (int i = i0; i < i1; i++) onTask(i, results[i - i0]);
            i0 = i1;
        }
    }

    private float[][] RunGroup(Transformer transformer, IReadOnlyList<TaskSequences> tasks, int i0, int i1, CancellationToken cancel)
    {
        var cache = transformer.Cache;
        cache.Clear();
        int groupSize = i1 - i0;
        var firstSequence = new int[groupSize];
        var byRow = new List<int>[groupSize][];
        var results = new float[groupSize][];
        var prefixBatch = new List<BatchToken>();
        var prefixRows = new List<(int Task, int Row)>();
        var tailBatch = new List<BatchToken>();
        var tailRows = new List<(int Task, int Row)>();
        int seq = 0;
        for (int g = 0; g < groupSize; g++)
        {
            var t = tasks[i0 + g];
            firstSequence[g] = seq;
            results[g] = new float[t.Requests.Length];
            byRow[g] = new List<int>[t.RowCount];
            for (int q = 0; q < t.Requests.Length; q++) (byRow[g][t.Requests[q].Row] ??= []).Add(q);

            int cp = t.CommonPrefix;
            for (int i = 0; i < cp; i++) prefixBatch.Add(new BatchToken(t.Sequences[0][i], i, seq, i == cp - 1));
            prefixRows.Add((g, 0));
            int row = 1;
            for (int s = 0; s < t.Sequences.Length; s++)
            {
                var tokens = t.Sequences[s];
                for (int i = cp; i < tokens.Length; i++)
                {
                    bool output = t.OutputLastTokens || i < tokens.Length - 1;
                    tailBatch.Add(new BatchToken(tokens[i], i, seq + s, output));
                    if (output) tailRows.Add((g, row++));
                }
            }
            seq += t.Sequences.Length;
        }

        Decode(transformer, prefixBatch, prefixRows, tasks, i0, byRow, results, cancel);
        for (int g = 0; g < groupSize; g++)
            for (int s = 1; s < tasks[i0 + g].Sequences.Length; s++) cache.CopySequence(firstSequence[g], firstSequence[g] + s);
        Decode(transformer, tailBatch, tailRows, tasks, i0, byRow, results, cancel);
        return results;
    }

    private void Decode(Transformer transformer, List<BatchToken> batch, List<(int Task, int Row)> rows, IReadOnlyList<TaskSequences> tasks, int i0,
        List<int>[][] byRow, float[][] results, CancellationToken cancel)
    {
        int vocab = _model.Hparams.VocabSize;
        int nextRow = 0;
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(batch);
        for (int start = 0; start < span.Length; start += _options.MicroBatch)
        {
            cancel.ThrowIfCancellationRequested();
            var chunk = span.Slice(start, Math.Min(_options.MicroBatch, span.Length - start));
            int outputs = 0;
            foreach (var t in chunk) if (t.Output) outputs++;
            var logits = transformer.Decode(chunk);
            int firstRow = nextRow;
            nextRow += outputs;
            Workers.For(outputs, _options.Threads, (a, b) =>
            {
                for (int o = a; o < b; o++)
                {
                    var (g, row) = rows[firstRow + o];
                    var wanted = byRow[g][row];
                    if (wanted is null) continue;
                    var l = new ReadOnlySpan<float>(logits, o * vocab, vocab);
                    float max = LogProbs.Max(l);
                    float floatSum = float.NaN;
                    double doubleSum = double.NaN;
                    var requests = tasks[i0 + g].Requests;
                    foreach (int q in wanted)
                    {
                        var r = requests[q];
                        if (r.Kind == LogProbKind.Batch)
                        {
                            if (float.IsNaN(floatSum)) floatSum = LogProbs.FloatSum(l, max);
                            results[g][q] = LogProbs.Batch(l, r.Token, max, floatSum);
                        }
                        else
                        {
                            if (double.IsNaN(doubleSum)) doubleSum = LogProbs.DoubleSum(l, max);
                            results[g][q] = LogProbs.Softmax(l, r.Token, max, doubleSum);
                        }
                    }
                }
            });
        }
    }
}
