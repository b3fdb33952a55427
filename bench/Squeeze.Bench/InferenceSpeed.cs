using System.Diagnostics;
using System.Globalization;
using Squeeze.Models;
using Squeeze.Oracle;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// llama-bench's pp (prompt processing) and tg (generation) tests for Squeeze and llama.cpp on the same file with the
/// same threads, in one process: <c>squeeze-bench speed [--types f16,q8_0,q4_K] [-p 512] [-n 128] [-r 3] [-t N] [--small]</c>.
/// The model is a random-weight one shaped like Qwen3-0.6B (or a small one with <c>--small</c>), written once to the temp folder.
/// </summary>
internal static class InferenceSpeed
{
    public static int Run(string[] args)
    {
        var types = new List<GgmlType> { GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_K };
        int prompt = 512, gen = 128, reps = 3, threads = Environment.ProcessorCount;
        bool small = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--types": types = args[++i].Split(',').Select(Parse).ToList(); break;
                case "-p": prompt = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-n": gen = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-r": reps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-t": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--small": small = true; break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }

        var shape = small
            ? new SyntheticModelOptions { Spec = ArchitectureSpec.Qwen3, VocabSize = 4096, EmbeddingLength = 512, LayerCount = 4, HeadCount = 8, KvHeadCount = 4, HeadDim = 64, FeedForwardLength = 1536, ContextLength = 2048 }
            : new SyntheticModelOptions { Spec = ArchitectureSpec.Qwen3, VocabSize = 151936, EmbeddingLength = 1024, LayerCount = 28, HeadCount = 16, KvHeadCount = 8, HeadDim = 128, FeedForwardLength = 3072, ContextLength = 4096 };
        Console.WriteLine($"model: random weights shaped like {(small ? "a small Qwen3" : "Qwen3-0.6B")}; threads {threads}; {reps} repetitions");
        Console.WriteLine();
        Console.WriteLine("| weights | test | squeeze t/s | llama.cpp t/s | squeeze / llama.cpp |");
        Console.WriteLine("|---|---|---:|---:|---:|");
        foreach (var type in types)
        {
            var path = Path.Combine(Path.GetTempPath(), $"squeeze-bench-{(small ? "small" : "qwen3-0.6b")}-{type.Name()}.gguf");
            if (!File.Exists(path)) SyntheticModel.Write(path, shape with { WeightType = type, Name = "bench" });
            using var model = TransformerModel.Load(path);
            var squeeze = new Transformer(model, contextSize: prompt + gen + 8, threads: threads);
            using var oracle = new OracleModel(path, contextSize: prompt + gen + 8, batchSize: prompt, threads: threads);
            var tokens = Enumerable.Range(0, prompt).Select(i => i == 0 ? 1 : 3 + (i * 7919) % (shape.VocabSize - 3)).ToArray();

            var ppOurs = Repeat(reps, () => { squeeze.Cache.Clear(); squeeze.Evaluate(tokens, allLogits: false); }, prompt);
            var ppTheirs = Repeat(reps, () => { oracle.ClearCache(); oracle.Decode(tokens, 0, allLogits: false); }, prompt);
            Row(type, $"pp{prompt}", ppOurs, ppTheirs);

            var tgOurs = Repeat(reps, () => { squeeze.Cache.Clear(); for (int i = 0; i < gen; i++) squeeze.Evaluate([tokens[i]], i); }, gen);
            var tgTheirs = Repeat(reps, () => { oracle.ClearCache(); for (int i = 0; i < gen; i++) oracle.Decode([tokens[i]], i, allLogits: false); }, gen);
            Row(type, $"tg{gen}", tgOurs, tgTheirs);
        }
        return 0;
    }

    private static GgmlType Parse(string name) => GgmlTypes.TryParse(name, out var t) ? t : throw new ArgumentException($"unknown type {name}");

    private static void Row(GgmlType type, string test, (double Mean, double Sd) ours, (double Mean, double Sd) theirs) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {type.Name()} | {test} | {ours.Mean:0.00} ± {ours.Sd:0.00} | {theirs.Mean:0.00} ± {theirs.Sd:0.00} | {ours.Mean / theirs.Mean:0.00}x |"));

    /// <summary>Tokens per second over <paramref name="reps"/> timed runs after one warm-up run: mean and standard deviation.</summary>
    private static (double Mean, double Sd) Repeat(int reps, Action run, int tokens)
    {
        run();
        var rates = new double[reps];
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            run();
            rates[r] = tokens / sw.Elapsed.TotalSeconds;
        }
        double mean = rates.Average();
        double sd = reps > 1 ? Math.Sqrt(rates.Sum(x => (x - mean) * (x - mean)) / (reps - 1)) : 0;
        return (mean, sd);
    }
}
