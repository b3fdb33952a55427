using System.Diagnostics;
using System.Globalization;
using Squeeze.Models;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Quantization;

/// <summary>
/// Peak memory of <c>squeeze quantize</c> on a model with Qwen3-8B's layer shapes (4 layers: a 3.7 GB F16 file). Explicit
/// (run with <c>dotnet test --filter QuantizeMemoryTests -- xUnit.Explicit=on</c>): writing the model alone takes minutes.
/// <c>bench/Squeeze.Bench quantize-model</c> measures the same beside llama.cpp.
/// </summary>
public sealed class QuantizeMemoryTests
{
    private const long Limit = 3L << 29; // 1.5 GiB

    [Fact(Explicit = true)]
    public async Task Qwen3_8B_shaped_model_quantizes_to_Q4_K_M_in_under_1_5_GiB()
    {
        string dir = Directory.CreateTempSubdirectory("squeeze-memory-").FullName;
        try
        {
            string input = Path.Combine(dir, "qwen3-8b-shapes.gguf"), output = Path.Combine(dir, "q4_k_m.gguf");
            SyntheticModel.Write(input, new SyntheticModelOptions
            {
                Spec = ArchitectureSpec.Qwen3, LayerCount = 4, EmbeddingLength = 4096, FeedForwardLength = 12288, HeadCount = 32, KvHeadCount = 8,
                HeadDim = 128, VocabSize = 151936, WeightType = GgmlType.F16,
            });
            // The CLI in a child process, so that its resident memory is measured alone (the mapped input's pages included).
            string cli = Path.Combine(AppContext.BaseDirectory, "squeeze.dll");
            var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { cli, "quantize", input, output, "Q4_K_M", "2" }) psi.ArgumentList.Add(a);
            var clock = Stopwatch.StartNew();
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            long peak = 0;
            while (!p.HasExited)
            {
                peak = Math.Max(peak, PeakResident(p.Id));
                await Task.Delay(50, TestContext.Current.CancellationToken);
            }
            await p.WaitForExitAsync(TestContext.Current.CancellationToken);
            string err = await stderr, text = await stdout;
            Assert.True(p.ExitCode == 0, err);
            TestContext.Current.TestOutputHelper?.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"peak resident {peak / (double)(1L << 30):0.00} GiB, {clock.Elapsed.TotalSeconds:0.0} s\n{text}"));
            Assert.True(peak > 0 && peak < Limit, $"peak resident memory {peak} bytes");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>VmHWM of process <paramref name="pid"/> in bytes (0 once it is gone).</summary>
    private static long PeakResident(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        return 0;
    }
}
