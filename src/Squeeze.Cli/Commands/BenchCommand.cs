using System.CommandLine;
using System.Globalization;
using Squeeze.Evaluation;
using Squeeze.Models;
using Squeeze.Numerics;
using Squeeze.Tokenizers;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze bench -m MODEL [-m MODEL2 ...] [-p 512] [-n 128] [-pg P,G] [-d 0] [-r 5] [--no-warmup] [-t N] [-b 2048] [-o md|csv|json|jsonl] [--json FILE]</c>:
/// llama-bench's prompt (ppN), generation (tgN) and combined (ppP+tgG) tests and its table.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var models = new Option<string[]>("--model", "-m") { Description = "GGUF model(s) to time (repeat -m for more).", Required = true };
        var prompt = new Option<string>("--n-prompt", "-p") { Description = "Prompt sizes, comma-separated (0 = no prompt test).", DefaultValueFactory = _ => "512" };
        var gen = new Option<string>("--n-gen", "-n") { Description = "Generation lengths, comma-separated (0 = no generation test).", DefaultValueFactory = _ => "128" };
        var pg = new Option<string[]>("--n-prompt-gen", "-pg") { Description = "A prompt then a generation timed together, as P,G (repeatable)." };
        var depth = new Option<string>("--n-depth", "-d") { Description = "Tokens already in the cache before each test (decoded untimed), comma-separated.", DefaultValueFactory = _ => "0" };
        var reps = new Option<int>("--repetitions", "-r") { Description = "Timed repetitions per test.", DefaultValueFactory = _ => 5 };
        var threads = new Option<string>("--threads", "-t") { Description = "Worker threads, comma-separated for several runs.", DefaultValueFactory = _ => Workers.DefaultThreads.ToString(CultureInfo.InvariantCulture) };
        var batch = new Option<int>("--batch-size", "-b") { Description = "Prompt tokens per decode call.", DefaultValueFactory = _ => 2048 };
        var output = new Option<string>("--output", "-o") { Description = "Output format: md, csv, json or jsonl.", DefaultValueFactory = _ => "md" };
        var json = new Option<FileInfo?>("--json") { Description = "Also save the results as JSON (for squeeze report)." };
        var noWarmup = new Option<bool>("--no-warmup") { Description = "Skip the untimed warm-up runs before each test." };
        var command = new Command("bench", "Prompt and generation speed as llama-bench measures it.") { models, prompt, gen, pg, depth, reps, threads, batch, output, json, noWarmup };
        command.SetAction(p => CommandRunner.Run(() => Run(p.GetRequiredValue(models), p.GetValue(prompt)!, p.GetValue(gen)!, p.GetValue(pg) ?? [],
            p.GetValue(depth)!, p.GetValue(reps), p.GetValue(threads)!, p.GetValue(batch), p.GetValue(output)!, p.GetValue(json), !p.GetValue(noWarmup))));
        return command;
    }

    /// <summary>
    /// llama-bench's number lists (<c>parse_int_range</c>): comma-separated items, each a number or a range
    /// <c>first-last</c> (step 1), <c>first-last+step</c> or <c>first-last*factor</c>, e.g. <c>128-1024*2</c> = 128,256,512,1024.
    /// </summary>
    internal static int[] Ints(string text, string option, int min)
    {
        var values = new List<int>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var m = System.Text.RegularExpressions.Regex.Match(item, @"^(\d+)(?:-(\d+)(?:([+*])(\d+))?)?$");
            if (!m.Success || !int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int first)
                || m.Groups[2].Success && !int.TryParse(m.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out _)
                || m.Groups[4].Success && !int.TryParse(m.Groups[4].Value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                throw new InvalidInputException($"{option}: '{item}' is not a whole number or a range first-last[+step|*factor]");
            int last = m.Groups[2].Success ? int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) : first;
            char op = m.Groups[3].Success ? m.Groups[3].Value[0] : '+';
            int step = m.Groups[4].Success ? int.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture) : 1;
            for (long i = first; i <= last;)
            {
                if (i < min) throw new InvalidInputException($"{option}: {i} is below {min}");
                values.Add((int)i);
                if (values.Count > 10_000) throw new InvalidInputException($"{option}: '{item}' gives too many values");
                long next = op == '+' ? i + step : i * step;
                if (next <= i) throw new InvalidInputException($"{option}: the range '{item}' does not grow");
                i = next;
            }
        }
        return values.ToArray();
    }

    /// <summary>
    /// The tests in llama-bench's order: for each depth, prompt sizes, then generation lengths, then prompt+generation pairs.
    /// </summary>
    internal static List<BenchTest> Tests(string prompt, string gen, string[] pg, string depth = "0")
    {
        var tests = new List<BenchTest>();
        var depths = Ints(depth, "-d", 0);
        if (depths.Length == 0) throw new InvalidInputException("-d: no depth given");
        foreach (int d in depths)
        {
            foreach (int p in Ints(prompt, "-p", 0)) if (p > 0) tests.Add(new BenchTest(p, 0, d));
            foreach (int g in Ints(gen, "-n", 0)) if (g > 0) tests.Add(new BenchTest(0, g, d));
            foreach (var pair in pg)
            {
                var v = Ints(pair, "-pg", 0);
                if (v.Length != 2) throw new InvalidInputException($"-pg: '{pair}' is not P,G");
                if (v[0] + v[1] > 0) tests.Add(new BenchTest(v[0], v[1], d));
            }
        }
        if (tests.Count == 0) throw new InvalidInputException("no tests: give -p, -n or -pg with a size above 0");
        return tests;
    }

    private static int Run(string[] modelPaths, string prompt, string gen, string[] pg, string depth, int reps, string threadList, int batch, string format, FileInfo? json, bool warmup)
    {
        if (format is not ("md" or "csv" or "json" or "jsonl")) throw new InvalidInputException($"-o: '{format}' is not md, csv, json or jsonl");
        if (reps < 1) throw new InvalidInputException($"-r must be at least 1, not {reps}");
        if (batch < 1) throw new InvalidInputException($"-b must be at least 1, not {batch}");
        var tests = Tests(prompt, gen, pg, depth);
        var threadCounts = Ints(threadList, "-t", 1);
        if (threadCounts.Length == 0) throw new InvalidInputException("-t: no thread count given");
        foreach (var path in modelPaths)
            if (!File.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);

        var rows = new List<BenchRow>();
        var options = new BenchOptions { Repetitions = reps, BatchSize = batch, Warmup = warmup };
        bool headerWritten = false;
        foreach (var path in modelPaths)
        {
            using var model = TransformerModel.Load(path);
            var tokenizer = Tokenizer.FromGguf(model.File);
            var info = ModelInfo.Of(model.File, path);
            int bos = tokenizer.AddBos ? tokenizer.Bos : -1;
            foreach (int t in threadCounts)
                foreach (var test in tests)
                {
                    var decoder = new TransformerDecoder(model, test.Cells, t);
                    var result = SpeedBench.Run(decoder, test, options, bos);
                    var row = new BenchRow(info, SpeedBench.Describe(info), "CPU", t, batch, result, DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
                    rows.Add(row);
                    // Markdown and JSON Lines rows appear as tests finish, as llama-bench prints them.
                    if (format == "jsonl")
                    {
                        Console.Out.Write(BenchTable.JsonLines([row]));
                        Console.Out.Flush();
                    }
                    if (format == "md")
                    {
                        var table = BenchTable.Markdown([row]);
                        Console.Out.Write(headerWritten ? string.Join('\n', table.Split('\n').Skip(2)) : table);
                        Console.Out.Flush();
                        headerWritten = true;
                    }
                }
        }
        if (format == "md") Console.Out.Write(BenchTable.MarkdownFooter());
        if (format == "csv") Console.Out.Write(BenchTable.Csv(rows));
        if (format == "json") Console.Out.Write(BenchTable.Json(rows));
        if (json is not null)
            ResultFile.Write(json.FullName, ResultFile.Kinds.Bench, rows.Count > 0 ? rows[0].Model : null, null,
                rows.Select(r => new { model = r.Model, model_type = r.ModelType, backend = r.Backend, n_threads = r.Threads, n_batch = r.BatchSize, test = r.Result.Name,
                    n_prompt = r.Result.Test.Prompt, n_gen = r.Result.Test.Gen, n_depth = r.Result.Test.Depth, avg_ts = r.Result.AvgTs, stddev_ts = r.Result.StddevTs, samples_ns = r.Result.SamplesNs }).ToList());
        return CommandRunner.Ok;
    }
}
