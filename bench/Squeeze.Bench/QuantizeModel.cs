using System.Diagnostics;
using System.Globalization;
using Squeeze.Gguf;
using Squeeze.Models;
using Squeeze.Oracle;
using Squeeze.Quantization;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// <c>quantize-model [TYPE] [--threads N] [--layers N] [--keep]</c>: writes a synthetic model with Qwen3-8B's layer
/// shapes (n_embd 4096, n_ff 12288, 32 heads, 8 KV heads, head size 128, vocabulary 151936; 4 layers by default; F16)
/// to the temp folder, then quantizes it (default Q4_K_M) in a child process with Squeeze's library call and in another
/// with llama.cpp's <c>llama_model_quantize</c>, the same threads, and prints each one's time and peak resident memory
/// (VmHWM: the heap and the pages of the memory-mapped input it kept). The outputs must be identical. The files are
/// deleted afterwards unless <c>--keep</c>.
/// </summary>
internal static class QuantizeModel
{
    public static int Run(string[] args)
    {
        string type = "Q4_K_M";
        int threads = Squeeze.Numerics.Workers.DefaultThreads, layers = 4;
        bool keep = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--layers": layers = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--keep": keep = true; break;
                default: type = args[i]; break;
            }
        }
        string dir = Path.Combine(Path.GetTempPath(), "squeeze-bench-quantize-model");
        Directory.CreateDirectory(dir);
        string input = Path.Combine(dir, $"qwen3-8b-shapes-{layers}l-f16.gguf");
        string ours = Path.Combine(dir, $"squeeze-{type}.gguf"), theirs = Path.Combine(dir, $"llama-{type}.gguf");
        try
        {
            if (!File.Exists(input))
            {
                var clock = Stopwatch.StartNew();
                Console.Error.WriteLine($"writing {input} ...");
                SyntheticModel.Write(input, new SyntheticModelOptions
                {
                    Spec = ArchitectureSpec.Qwen3, LayerCount = layers, EmbeddingLength = 4096, FeedForwardLength = 12288, HeadCount = 32,
                    KvHeadCount = 8, HeadDim = 128, VocabSize = 151936, WeightType = GgmlType.F16, Name = "synthetic qwen3-8b shapes",
                });
                Console.Error.WriteLine($"written in {clock.Elapsed.TotalSeconds:0} s ({new FileInfo(input).Length / (double)(1L << 30):0.00} GiB)");
            }
            var s = Child("squeeze", input, ours, type, threads);
            var l = Child("llama", input, theirs, type, threads);
            bool same = File.ReadAllBytes(ours).AsSpan().SequenceEqual(File.ReadAllBytes(theirs));
            Console.WriteLine($"Quantizing {Path.GetFileName(input)} ({new FileInfo(input).Length / (double)(1L << 30):0.00} GiB) to {type}, {threads} threads");
            Console.WriteLine();
            Console.WriteLine("| | time | peak RSS (VmHWM) |");
            Console.WriteLine("|---|---:|---:|");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| squeeze | {s.Seconds:0.0} s | {s.PeakBytes / (double)(1L << 30):0.00} GiB |"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| llama.cpp | {l.Seconds:0.0} s | {l.PeakBytes / (double)(1L << 30):0.00} GiB |"));
            Console.WriteLine();
            Console.WriteLine(same ? "outputs identical" : "OUTPUTS DIFFER");
            return same ? 0 : 1;
        }
        finally
        {
            if (!keep)
            {
                foreach (var f in new[] { input, ours, theirs }) File.Delete(f);
                if (!Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
            }
        }
    }

    /// <summary>The child's side: quantize, then print the seconds and VmHWM.</summary>
    public static int RunChild(string[] args)
    {
        string who = args[0], input = args[1], output = args[2];
        var target = LlamaFileTypes.Parse(args[3]);
        int threads = int.Parse(args[4], CultureInfo.InvariantCulture);
        var clock = Stopwatch.StartNew();
        if (who == "squeeze")
        {
            using var f = GgufFile.Open(input);
            var plan = QuantizationPlan.Build(f, target, new PlanOptions());
            ModelQuantizer.Quantize(f, plan, output, new QuantizeOptions { Threads = threads });
        }
        else if (!LlamaQuantize.Run(input, output, (int)target.FileType, false, threads))
        {
            return 1;
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds} {PeakResident()}"));
        return 0;
    }

    /// <summary>VmHWM of this process, in bytes.</summary>
    public static long PeakResident()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        return -1;
    }

    private static (double Seconds, long PeakBytes) Child(string who, string input, string output, string type, int threads)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(typeof(QuantizeModel).Assembly.Location);
        foreach (var a in new[] { "quantize-model-child", who, input, output, type, threads.ToString(CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{who} failed ({p.ExitCode}): {text}");
        var parts = text.Trim().Split('\n')[^1].Split(' ');
        return (double.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture));
    }
}
