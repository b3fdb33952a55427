using System.Diagnostics;
using Squeeze.Models;

namespace Squeeze.Evaluation;

/// <summary>
/// One llama-bench test: a prompt of <paramref name="Prompt"/> tokens, then <paramref name="Gen"/> generated tokens, after
/// <paramref name="Depth"/> tokens already in the cache (llama-bench's <c>-d</c>; decoded before each repetition, untimed).
/// </summary>
public sealed record BenchTest(int Prompt, int Gen, int Depth = 0)
{
    /// <summary>llama-bench's name: <c>pp512</c>, <c>tg128</c> or <c>pp1024+tg1024</c>, with <c> @ d4096</c> for a depth.</summary>
    public string Name => (Prompt > 0 && Gen == 0 ? $"pp{Prompt}" : Gen > 0 && Prompt == 0 ? $"tg{Gen}" : $"pp{Prompt}+tg{Gen}")
        + (Depth > 0 ? $" @ d{Depth}" : "");

    /// <summary>KV cells the test needs (llama-bench sizes its context to n_prompt + n_gen + n_depth).</summary>
    public int Cells => Math.Max(1, Prompt + Gen + Depth);
}

/// <summary>Settings of a benchmark run (llama-bench's <c>-r</c>, <c>-b</c>, warm-up).</summary>
public sealed record BenchOptions
{
    /// <summary>Timed repetitions (llama-bench's default 5).</summary>
    public int Repetitions { get; init; } = 5;

    /// <summary>Prompt tokens per decode call (llama-bench's default n_batch 2048).</summary>
    public int BatchSize { get; init; } = 2048;

    /// <summary>A prompt run and a one-token generation before timing, as llama-bench does.</summary>
    public bool Warmup { get; init; } = true;

    /// <summary>Seed of the random token ids.</summary>
    public int Seed { get; init; } = 1;
}

/// <summary>
/// The timings of one test, and llama-bench's statistics over them: <c>avg_ns</c> and <c>stddev_ns</c> in integer
/// nanoseconds (llama-bench computes them in uint64), and tokens per second per repetition, (n_prompt + n_gen)·1e9/ns,
/// averaged with their sample standard deviation.
/// </summary>
public sealed record BenchResult(BenchTest Test, IReadOnlyList<long> SamplesNs)
{
    public string Name => Test.Name;
    public IReadOnlyList<double> SamplesTs => SamplesNs.Select(ns => 1e9 * (Test.Prompt + Test.Gen) / ns).ToList();
    public long AvgNs => SamplesNs.Count == 0 ? 0 : (long)((ulong)SamplesNs.Sum() / (ulong)SamplesNs.Count);

    public long StddevNs
    {
        get
        {
            int n = SamplesNs.Count;
            if (n <= 1) return 0;
            ulong mean = (ulong)AvgNs, sq = 0;
            foreach (var s in SamplesNs) sq += (ulong)s * (ulong)s;
            ulong variance = sq / (ulong)(n - 1) - mean * mean * (ulong)n / (ulong)(n - 1);
            return (long)(ulong)Math.Sqrt(variance);
        }
    }

    public double AvgTs => SamplesTs.Count == 0 ? 0 : SamplesTs.Average();

    public double StddevTs
    {
        get
        {
            var ts = SamplesTs;
            int n = ts.Count;
            if (n <= 1) return 0;
            double mean = AvgTs, sq = ts.Sum(t => t * t);
            return Math.Sqrt(sq / (n - 1) - mean * mean * n / (n - 1));
        }
    }
}

/// <summary>
/// llama-bench's tests (tools/llama-bench/llama-bench.cpp): <c>ppN</c> decodes N tokens (BOS first when the vocabulary
/// adds it, then random ids) in batches of n_batch with one output; <c>tgN</c> decodes N single tokens one after the
/// other; <c>ppP+tgG</c> does both in one timed run. Each repetition starts from an empty cache, into which a test with a
/// depth first decodes its depth as an untimed prompt (the timed prompt then starts with BOS again, as llama-bench's
/// does). Works on any <see cref="IBatchDecoder"/>, so Squeeze and llama.cpp are timed by the same code.
/// </summary>
public static class SpeedBench
{
    /// <summary>Runs <paramref name="test"/> on <paramref name="decoder"/> (whose cache must hold <see cref="BenchTest.Cells"/> tokens);
    /// <paramref name="bos"/> is the token to start with, or -1 when the vocabulary adds none.</summary>
    public static BenchResult Run(IBatchDecoder decoder, BenchTest test, BenchOptions options, int bos, CancellationToken cancellation = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Repetitions, 1, nameof(options.Repetitions));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1, nameof(options.BatchSize));
        var rng = new Random(options.Seed);
        int vocab = decoder.VocabSize;
        if (options.Warmup)
        {
            decoder.ClearCache();
            if (test.Prompt > 0) Prompt(decoder, test.Prompt, options.BatchSize, bos, vocab, rng);
            if (test.Gen > 0) Generate(decoder, 1, test.Prompt > 0 ? test.Prompt : 0, bos, vocab, rng);
        }
        var samples = new List<long>(options.Repetitions);
        for (int r = 0; r < options.Repetitions; r++)
        {
            cancellation.ThrowIfCancellationRequested();
            decoder.ClearCache();
            if (test.Depth > 0) Prompt(decoder, test.Depth, options.BatchSize, bos, vocab, rng);
            long start = Stopwatch.GetTimestamp();
            if (test.Prompt > 0) Prompt(decoder, test.Prompt, options.BatchSize, bos, vocab, rng, test.Depth);
            if (test.Gen > 0) Generate(decoder, test.Gen, test.Depth + test.Prompt, bos, vocab, rng);
            long ticks = Stopwatch.GetTimestamp() - start;
            samples.Add((long)(ticks * (1e9 / Stopwatch.Frequency)));
        }
        return new BenchResult(test, samples);
    }

    private static void Prompt(IBatchDecoder decoder, int count, int batchSize, int bos, int vocab, Random rng, int startPosition = 0)
    {
        var batch = new BatchToken[Math.Min(batchSize, count)];
        for (int done = 0; done < count;)
        {
            int n = Math.Min(count - done, batchSize);
            for (int i = 0; i < n; i++)
            {
                int token = done == 0 && i == 0 && bos >= 0 ? bos : rng.Next(vocab);
                batch[i] = new BatchToken(token, startPosition + done + i, 0, i == n - 1);
            }
            decoder.Decode(batch.AsSpan(0, n));
            done += n;
        }
    }

    /// <summary>llama-bench's <c>test_gen</c>: BOS (or a random id) first, then random ids, one decode per token.</summary>
    private static void Generate(IBatchDecoder decoder, int count, int startPosition, int bos, int vocab, Random rng)
    {
        int token = bos >= 0 ? bos : rng.Next(vocab);
        for (int i = 0; i < count; i++)
        {
            decoder.Decode([new BatchToken(token, startPosition + i, 0, true)]);
            token = rng.Next(vocab);
        }
    }

    /// <summary>llama.cpp's model description for bench tables: architecture, size, file type (<c>llama 260K all F32</c>).</summary>
    public static string Describe(ModelInfo model)
    {
        string size = model.Parameters switch
        {
            >= 1_000_000_000 => $"{model.Parameters / 1e9:0.#}B",
            >= 1_000_000 => $"{model.Parameters / 1e6:0.#}M",
            _ => $"{model.Parameters / 1e3:0.#}K",
        };
        string type = model.FileType is null ? "?" : FileTypeNames.GetValueOrDefault(model.FileType, model.FileType);
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{model.Architecture ?? "?"} {size} {type}");
    }

    /// <summary>llama.cpp's names of file types in model descriptions (src/llama-model-loader.cpp, <c>llama_ftype_name</c>)
    /// where they differ from the type's short name.</summary>
    private static readonly Dictionary<string, string> FileTypeNames = new(StringComparer.Ordinal)
    {
        ["F32"] = "all F32",
        ["MXFP4_MOE"] = "MXFP4 MoE",
        ["Q2_K"] = "Q2_K - Medium",
        ["Q2_K_S"] = "Q2_K - Small",
        ["Q3_K_S"] = "Q3_K - Small",
        ["Q3_K_M"] = "Q3_K - Medium",
        ["Q3_K_L"] = "Q3_K - Large",
        ["Q4_K_S"] = "Q4_K - Small",
        ["Q4_K_M"] = "Q4_K - Medium",
        ["Q5_K_S"] = "Q5_K - Small",
        ["Q5_K_M"] = "Q5_K - Medium",
        ["TQ1_0"] = "TQ1_0 - 1.69 bpw ternary",
        ["TQ2_0"] = "TQ2_0 - 2.06 bpw ternary",
        ["IQ2_XXS"] = "IQ2_XXS - 2.0625 bpw",
        ["IQ2_XS"] = "IQ2_XS - 2.3125 bpw",
        ["IQ2_S"] = "IQ2_S - 2.5 bpw",
        ["IQ2_M"] = "IQ2_M - 2.7 bpw",
        ["IQ3_XS"] = "IQ3_XS - 3.3 bpw",
        ["IQ3_XXS"] = "IQ3_XXS - 3.0625 bpw",
        ["IQ1_S"] = "IQ1_S - 1.5625 bpw",
        ["IQ1_M"] = "IQ1_M - 1.75 bpw",
        ["IQ4_NL"] = "IQ4_NL - 4.5 bpw",
        ["IQ4_XS"] = "IQ4_XS - 4.25 bpw",
        ["IQ3_S"] = "IQ3_S - 3.4375 bpw",
        ["IQ3_M"] = "IQ3_S mix - 3.66 bpw",
    };
}

/// <summary>One row of a bench table: which model, on what, and the result.</summary>
/// <param name="Model">The model file.</param>
/// <param name="ModelType">llama-bench's <c>model_type</c> (<see cref="SpeedBench.Describe"/>).</param>
/// <param name="Backend">"CPU" for Squeeze; a side-by-side run names the engine.</param>
/// <param name="Threads">Worker threads.</param>
/// <param name="BatchSize">n_batch.</param>
/// <param name="Result">Timings and statistics.</param>
/// <param name="TestTime">When the test ran (RFC 3339, UTC).</param>
public sealed record BenchRow(ModelInfo Model, string ModelType, string Backend, int Threads, int BatchSize, BenchResult Result, string TestTime);

/// <summary>llama-bench's output formats for bench rows: Markdown table, CSV and JSON with its field names.</summary>
public static class BenchTable
{
    /// <summary>llama-bench's default n_batch: a run with another shows an n_batch column, as llama-bench shows non-default settings.</summary>
    public const int DefaultBatchSize = 2048;

    private static readonly (string Field, string Title, int Width)[] BaseColumns =
        [("model", "model", -30), ("size", "size", 10), ("params", "params", 10), ("backend", "backend", -10), ("n_threads", "threads", 7), ("test", "test", 15), ("t/s", "t/s", 20)];

    private static readonly (string Field, string Title, int Width)[] BatchColumns =
        [.. BaseColumns[..5], ("n_batch", "n_batch", 7), .. BaseColumns[5..]];

    /// <summary>
    /// llama-bench's Markdown: model | size | params | backend | threads | [n_batch |] test | t/s, padded as it pads them;
    /// the n_batch column appears when a row's n_batch is not the default 2048.
    /// </summary>
    public static string Markdown(IReadOnlyList<BenchRow> rows)
    {
        var columns = rows.Any(r => r.BatchSize != DefaultBatchSize) ? BatchColumns : BaseColumns;
        var s = new System.Text.StringBuilder();
        s.Append('|');
        foreach (var (_, title, width) in columns) s.Append(' ').Append(Pad(title, width)).Append(" |");
        s.Append('\n').Append('|');
        foreach (var (_, _, width) in columns) s.Append(' ').Append(new string('-', Math.Abs(width) - 1)).Append(width > 0 ? ':' : '-').Append(" |");
        s.Append('\n');
        foreach (var r in rows)
        {
            s.Append('|');
            foreach (var (field, _, width) in columns)
            {
                string value = field switch
                {
                    "model" => r.ModelType,
                    "size" => r.Model.TensorBytes < 1024L * 1024 * 1024 ? Invariant($"{r.Model.TensorBytes / 1024.0 / 1024.0:F2} MiB") : Invariant($"{r.Model.TensorBytes / 1024.0 / 1024.0 / 1024.0:F2} GiB"),
                    "params" => r.Model.Parameters < 1_000_000_000 ? Invariant($"{r.Model.Parameters / 1e6:F2} M") : Invariant($"{r.Model.Parameters / 1e9:F2} B"),
                    "backend" => r.Backend,
                    "n_threads" => r.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "n_batch" => r.BatchSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "test" => r.Result.Name,
                    _ => Invariant($"{r.Result.AvgTs:F2} ± {r.Result.StddevTs:F2}"),
                };
                s.Append(' ').Append(Pad(value, width)).Append(" |");
            }
            s.Append('\n');
        }
        return s.ToString();
    }

    /// <summary>llama-bench's field names (those that apply to Squeeze) and their values for one row.</summary>
    public static IReadOnlyList<(string Field, object Value)> Fields(BenchRow r) =>
    [
        ("build_commit", BuildCommit),
        ("build_number", 0),
        ("cpu_info", System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString()),
        ("gpu_info", ""),
        ("backends", r.Backend),
        ("model_filename", r.Model.Path),
        ("model_type", r.ModelType),
        ("model_size", r.Model.TensorBytes),
        ("model_n_params", r.Model.Parameters),
        ("n_batch", r.BatchSize),
        ("n_ubatch", r.BatchSize),
        ("n_threads", r.Threads),
        ("type_k", "f16"),
        ("type_v", "f16"),
        ("n_gpu_layers", 0),
        ("n_prompt", r.Result.Test.Prompt),
        ("n_gen", r.Result.Test.Gen),
        ("n_depth", r.Result.Test.Depth),
        ("test_time", r.TestTime),
        ("avg_ns", r.Result.AvgNs),
        ("stddev_ns", r.Result.StddevNs),
        ("avg_ts", r.Result.AvgTs),
        ("stddev_ts", r.Result.StddevTs),
    ];

    /// <summary>llama-bench's Markdown footer: a blank line and <c>build: COMMIT (NUMBER)</c>.</summary>
    public static string MarkdownFooter() => $"\nbuild: {BuildCommit} (0)\n";

    private static string BuildCommit => "squeeze-" + (typeof(BenchTable).Assembly.GetName().Version?.ToString(3) ?? "0");

    /// <summary>CSV with llama-bench's header line; every value quoted, as llama-bench quotes them.</summary>
    public static string Csv(IReadOnlyList<BenchRow> rows)
    {
        var s = new System.Text.StringBuilder();
        if (rows.Count == 0) return "";
        s.Append(string.Join(',', Fields(rows[0]).Select(f => f.Field))).Append('\n');
        foreach (var r in rows)
            s.Append(string.Join(',', Fields(r).Select(f => "\"" + Format(f.Value).Replace("\"", "\"\"") + "\""))).Append('\n');
        return s.ToString();
    }

    /// <summary>llama-bench's JSON Lines (<c>-o jsonl</c>): one object per test with its fields, <c>samples_ns</c> and <c>samples_ts</c>.</summary>
    public static string JsonLines(IReadOnlyList<BenchRow> rows)
    {
        var s = new System.Text.StringBuilder();
        foreach (var r in rows) s.Append(ToJson(r).ToJsonString()).Append('\n');
        return s.ToString();
    }

    /// <summary>llama-bench's JSON: an array of objects with its fields, <c>samples_ns</c> and <c>samples_ts</c>.</summary>
    public static string Json(IReadOnlyList<BenchRow> rows)
    {
        var array = new System.Text.Json.Nodes.JsonArray();
        foreach (var r in rows) array.Add(ToJson(r));
        return array.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    private static System.Text.Json.Nodes.JsonObject ToJson(BenchRow r)
    {
        var o = new System.Text.Json.Nodes.JsonObject();
        foreach (var (field, value) in Fields(r))
            o[field] = value switch
            {
                string t => t,
                int i => i,
                long l => l,
                double d => d,
                _ => value.ToString(),
            };
        o["samples_ns"] = new System.Text.Json.Nodes.JsonArray(r.Result.SamplesNs.Select(x => (System.Text.Json.Nodes.JsonNode?)x).ToArray());
        o["samples_ts"] = new System.Text.Json.Nodes.JsonArray(r.Result.SamplesTs.Select(x => (System.Text.Json.Nodes.JsonNode?)x).ToArray());
        return o;
    }

    private static string Format(object v) => v switch
    {
        double d => d.ToString("F6", System.Globalization.CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    private static string Pad(string text, int width)
    {
        // The "±" is one character here; llama-bench's padding counts bytes and widens the t/s column by one for it.
        return width < 0 ? text.PadRight(-width) : text.PadLeft(width);
    }

    private static string Invariant(FormattableString s) => s.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
