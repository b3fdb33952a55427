using System.Globalization;
using Squeeze.Evaluation;
using Squeeze.Gguf;
using Squeeze.Oracle;
using Squeeze.Tokenizers;

namespace Squeeze.Bench;

/// <summary>
/// <c>squeeze-bench versus [-m FILE ...] [-p 512] [-n 128] [-r 3] [-t N]</c>: llama-bench's ppN and tgN for Squeeze and
/// for llama.cpp on the same file in one run, both timed by <see cref="SpeedBench"/> (the code behind
/// <c>squeeze bench</c>), in llama-bench's table with the engine in the backend column and a ratio line per test.
/// Without -m it uses ../shared/data/models/stories260K.gguf.
/// </summary>
internal static class SideBySide
{
    public static int Run(string[] args)
    {
        var models = new List<string>();
        int prompt = 512, gen = 128, reps = 3, threads = Environment.ProcessorCount;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-m": models.Add(args[++i]); break;
                case "-p": prompt = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-n": gen = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-r": reps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-t": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }
        if (models.Count == 0) models.Add(DefaultModel());
        var options = new BenchOptions { Repetitions = reps };
        var tests = new List<BenchTest>();
        if (prompt > 0) tests.Add(new BenchTest(prompt, 0));
        if (gen > 0) tests.Add(new BenchTest(0, gen));
        var rows = new List<BenchRow>();
        var ratios = new List<string>();
        foreach (var path in models)
        {
            ModelInfo info;
            int bos;
            using (var file = GgufFile.Open(path))
            {
                info = ModelInfo.Of(file, path);
                var tokenizer = Tokenizer.FromGguf(file);
                bos = tokenizer.AddBos ? tokenizer.Bos : -1;
            }
            using var model = Squeeze.Models.TransformerModel.Load(path);
            foreach (var test in tests)
            {
                var ours = SpeedBench.Run(new TransformerDecoder(model, test.Cells, threads), test, options, bos);
                BenchResult theirs;
                using (var oracle = new OracleDecoder(path, test.Cells, Math.Max(1, Math.Min(options.BatchSize, test.Prompt)), sequences: 1, threads: threads))
                    theirs = SpeedBench.Run(oracle, test, options, bos);
                string time = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
                rows.Add(new BenchRow(info, SpeedBench.Describe(info), "Squeeze", threads, options.BatchSize, ours, time));
                rows.Add(new BenchRow(info, SpeedBench.Describe(info), "llama.cpp", threads, options.BatchSize, theirs, time));
                ratios.Add(string.Create(CultureInfo.InvariantCulture, $"{info.File} {test.Name}: Squeeze / llama.cpp = {ours.AvgTs / theirs.AvgTs:0.00}x"));
            }
        }
        Console.Write(BenchTable.Markdown(rows));
        Console.WriteLine();
        foreach (var r in ratios) Console.WriteLine(r);
        return 0;
    }

    private static string DefaultModel()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Squeeze.slnx")))
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "models", "stories260K.gguf"));
        throw new ArgumentException("no -m given and the repository root was not found");
    }
}
