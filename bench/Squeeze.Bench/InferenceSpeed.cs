using System.Diagnostics;
using System.Globalization;
using Squeeze.Models;
using Squeeze.Numerics;
using Squeeze.Oracle;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// llama-bench's pp (prompt processing) and tg (generation) tests for Squeeze and llama.cpp on the same file with the
/// same threads, in one process: <c>squeeze-bench speed [--types f16,q8_0,q4_K_M] [-p 512] [-n 128] [-r 3] [-t N] [--tests pp,tg] [--small]</c>.
/// The model is a random-weight one shaped like Qwen3-0.6B (or a small one with <c>--small</c>), written once to the temp folder.
/// A ggml type name gives a model with every 2-D weight of that type; <c>q4_K_M</c> is llama.cpp's Q4_K_M mix made by
/// llama_model_quantize from the F16 model (Q4_K, with Q6_K for the output, half the attn_v and ffn_down).
/// </summary>
internal static class InferenceSpeed
{
    public static int Run(string[] args)
    {
        var types = new List<string> { "f16", "q8_0", Q4KM };
        int prompt = 512, gen = 128, reps = 3, threads = Workers.DefaultThreads;
        bool small = false;
        var tests = new List<string> { "pp", "tg" };
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--types": types = args[++i].Split(',').ToList(); break;
                case "-p": prompt = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-n": gen = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-r": reps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-t": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--tests": tests = args[++i].Split(',').ToList(); break;
                case "--small": small = true; break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }

        var shape = small
            ? new SyntheticModelOptions { Spec = ArchitectureSpec.Qwen3, VocabSize = 4096, EmbeddingLength = 512, LayerCount = 4, HeadCount = 8, KvHeadCount = 4, HeadDim = 64, FeedForwardLength = 1536, ContextLength = 2048 }
            : new SyntheticModelOptions { Spec = ArchitectureSpec.Qwen3, VocabSize = 151936, EmbeddingLength = 1024, LayerCount = 28, HeadCount = 16, KvHeadCount = 8, HeadDim = 128, FeedForwardLength = 3072, ContextLength = 4096 };
        Console.WriteLine($"model: random weights shaped like {(small ? "a small Qwen3" : "Qwen3-0.6B")}; threads {threads}; {reps} repetitions");
        Console.WriteLine();
        Console.WriteLine("| weights | test | squeeze t/s | llama.cpp t/s | squeeze / llama.cpp | squeeze CPU ms/t | llama.cpp CPU ms/t | llama.cpp / squeeze CPU |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
        var notes = new List<string>();
        foreach (var type in types)
        {
            var path = ModelFile(type, shape, small ? "small" : "qwen3-0.6b", threads);
            using var model = TransformerModel.Load(path);
            notes.Add($"{type}: matrices {Describe(model)}");
            var squeeze = new Transformer(model, contextSize: prompt + gen + 8, threads: threads);
            using var oracle = new OracleModel(path, contextSize: prompt + gen + 8, batchSize: prompt, threads: threads);
            var tokens = Enumerable.Range(0, Math.Max(prompt, gen)).Select(i => i == 0 ? 1 : 3 + (i * 7919) % (shape.VocabSize - 3)).ToArray();

            var promptTokens = tokens[..prompt];
            if (tests.Contains("pp"))
            {
                var ppOurs = Repeat(reps, () => { squeeze.Cache.Clear(); squeeze.Evaluate(promptTokens, allLogits: false); }, prompt);
                var ppTheirs = Repeat(reps, () => { oracle.ClearCache(); oracle.Decode(promptTokens, 0, allLogits: false); }, prompt);
                Row(type, $"pp{prompt}", ppOurs, ppTheirs);
            }
            if (!tests.Contains("tg")) continue;

            var tgOurs = Repeat(reps, () => { squeeze.Cache.Clear(); for (int i = 0; i < gen; i++) squeeze.Evaluate([tokens[i]], i); }, gen);
            var tgTheirs = Repeat(reps, () => { oracle.ClearCache(); for (int i = 0; i < gen; i++) oracle.Decode([tokens[i]], i, allLogits: false); }, gen);
            Row(type, $"tg{gen}", tgOurs, tgTheirs);
        }
        Console.WriteLine();
        foreach (var note in notes) Console.WriteLine(note);
        return 0;
    }

    private const string Q4KM = "q4_K_M";

    /// <summary>The bench model for <paramref name="type"/>, written to the temp folder on first use.</summary>
    private static string ModelFile(string type, SyntheticModelOptions shape, string shapeName, int threads)
    {
        var path = Path.Combine(Path.GetTempPath(), $"squeeze-bench-{shapeName}-{type}.gguf");
        if (File.Exists(path)) return path;
        if (type == Q4KM)
        {
            var source = ModelFile("f16", shape, shapeName, threads);
            var temp = path + ".tmp";
            if (!LlamaQuantize.Run(source, temp, fileType: 15, pure: false, threads: threads)) throw new InvalidOperationException("llama_model_quantize failed");
            File.Move(temp, path, overwrite: true);
            return path;
        }
        var ggml = GgmlTypes.TryParse(type, out var t) ? t : throw new ArgumentException($"unknown type {type}");
        SyntheticModel.Write(path, shape with { WeightType = ggml, Name = "bench" });
        return path;
    }

    private static string Describe(TransformerModel model) =>
        string.Join(", ", model.Layers.SelectMany(l => l.Matrices)
            .Append(model.Output).GroupBy(w => w.Type).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key.Name()}"));

    private static void Row(string type, string test, Rate ours, Rate theirs) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {type} | {test} | {ours.Mean:0.00} ± {ours.Sd:0.00} | {theirs.Mean:0.00} ± {theirs.Sd:0.00} | {ours.Mean / theirs.Mean:0.00}x | {ours.CpuMs:0.0} | {theirs.CpuMs:0.0} | {theirs.CpuMs / ours.CpuMs:0.00}x |"));

    /// <summary>Wall-clock tokens per second (mean, standard deviation) and CPU milliseconds per token (all threads).</summary>
    private readonly record struct Rate(double Mean, double Sd, double CpuMs);

    /// <summary>
    /// Tokens per second over <paramref name="reps"/> timed runs after one warm-up run (mean and standard deviation),
    /// and the process's CPU time per token over those runs: on a machine shared with other work the wall clock
    /// depends on what else runs, the CPU time much less.
    /// </summary>
    private static Rate Repeat(int reps, Action run, int tokens)
    {
        run();
        var rates = new double[reps];
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            run();
            rates[r] = tokens / sw.Elapsed.TotalSeconds;
        }
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
        double mean = rates.Average();
        double sd = reps > 1 ? Math.Sqrt(rates.Sum(x => (x - mean) * (x - mean)) / (reps - 1)) : 0;
        return new Rate(mean, sd, cpu.TotalMilliseconds / reps / tokens);
    }
}
