using System.Globalization;
using System.Text.Json;
using Squeeze.Cli.Commands;
using Squeeze.Pipeline;
using Xunit;

namespace Squeeze.Tests.Cli;

/// <summary>
/// <c>squeeze run</c> over stories260K (F32 base) with four llama.cpp types and two layer-wise rule sets, and
/// <c>squeeze demo</c>: the report equals the individual commands' numbers, a second run does no work, and a run
/// cancelled halfway completes with the same report when started again.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class RunCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-run-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // stories260K's ffn_down rows (n_ff = 172) fit no block type, and llama.cpp has no fallback for these types, so
    // every candidate keeps ffn_down at f16. The two layer-wise candidates were chosen from `squeeze stats` of its
    // imatrix (groups_merged.txt, 8 chunks of 128): by LIM the most important layers are 0 and 1, so their attention
    // value and output get q8_0; by Σ(Act²) layer 1's attention inputs are the largest and the FFN inputs grow with depth.
    private string WritePipeline(string name)
    {
        var yaml = $$"""
            source: {{TestData.StoriesModel}}
            output: {{name}}
            threads: 2
            calibration: [{{TestData.Require("calibration/groups_merged.txt")}}]
            imatrix: { context: 128, chunks: 6 }
            evaluation:
              text: {{TestData.Require("eval/wikitext-2-raw/wiki.test.raw")}}
              context: 128
              chunks: 4
            candidates:
              - { type: Q8_0, rules: ['ffn_down=f16'] }
              - { type: Q5_0, rules: ['ffn_down=f16'] }
              - { type: Q4_0, rules: ['ffn_down=f16'] }
              - { type: IQ4_NL, rules: ['ffn_down=f16'] }
              - name: Q4_0-lim
                type: Q4_0
                rules: ['blk\.[01]\.attn_(v|output)=q8_0', 'ffn_down=f16']
              - name: Q4_0-actsq
                type: Q4_0
                rules: ['blk\.1\.attn_[qkv]=q5_0', 'blk\.[34]\.ffn_(gate|up)=q8_0', 'ffn_down=f16']
            """;
        var path = Path.Combine(_dir, name + ".yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    private static string[] CsvLines(string folder) => File.ReadAllLines(Path.Combine(folder, "report", "report.csv"));

    [Fact]
    public void A_stories_pipeline_reports_the_commands_numbers_reruns_nothing_and_resumes_after_cancellation()
    {
        var first = WritePipeline("first");
        var (code, stdout, stderr) = CliHarness.Run("run", first);
        Assert.True(code == 0, stdout + stderr);
        var output = Path.Combine(_dir, "first");
        var report = CsvLines(output);
        Assert.Equal(8, report.Length); // header, base, six candidates
        foreach (var f in new[] { "imatrix/imatrix.gguf", "imatrix/statistics.txt", "imatrix/statistics.csv", "imatrix/heatmap.png",
                     "report/report.md", "report/report-kld.png", "pipeline.log", "logs/quantize-Q4_0-lim.log" })
            Assert.True(File.Exists(Path.Combine(output, f)), f);

        // The same numbers as the commands run by hand: quantize with the pipeline's imatrix, then KL divergence.
        var model = Path.Combine(_dir, "by-hand.gguf");
        var json = Path.Combine(_dir, "by-hand.json");
        var imatrix = Path.Combine(output, "imatrix", "imatrix.gguf");
        Assert.Equal(0, CliHarness.Run("quantize", "--imatrix", imatrix, "--tensor-type", @"blk\.[01]\.attn_(v|output)=q8_0", "--tensor-type", "ffn_down=f16",
            TestData.StoriesModel, model, "Q4_0", "2").ExitCode);
        Assert.Equal(0, CliHarness.Run("perplexity", "-m", model, "--kl-divergence-base", Path.Combine(output, "results", "base.logits"),
            "--kl-divergence", "--json", json, "-t", "2").ExitCode);
        using (var doc = JsonDocument.Parse(File.ReadAllText(json)))
        {
            var kld = doc.RootElement.GetProperty("result").GetProperty("kld").GetProperty("value").GetDouble();
            var row = report.Single(l => l.StartsWith("Q4_0-lim.gguf,", StringComparison.Ordinal)).Split(',');
            int kldColumn = Array.IndexOf(report[0].Split(','), "KLD");
            Assert.Equal(kld.ToString("0.000000", CultureInfo.InvariantCulture), row[kldColumn]);
            Assert.Equal(File.ReadAllBytes(model), File.ReadAllBytes(Path.Combine(output, "models", "Q4_0-lim.gguf")));
        }

        // A second run does no work.
        (code, stdout, _) = CliHarness.Run("run", first);
        Assert.Equal(0, code);
        Assert.Contains("0 steps ran, 18 cached", stdout);

        // Cancelled as step 10 starts (its child process is killed), then started again: the same report.
        var spec = PipelineSpec.Load(WritePipeline("second"));
        var second = spec.Resolve(spec.Output);
        var steps = PipelinePlan.Build(spec, second, RunCommand.ChildProcessExecutor);
        using (var cancel = new CancellationTokenSource())
        {
            Assert.ThrowsAny<OperationCanceledException>(() => new PipelineRunner(second).Run(steps, e =>
            {
                if (e.Index == 9 && e.State == StepState.Running) cancel.Cancel();
            }, cancel.Token));
        }
        Assert.False(File.Exists(Path.Combine(second, "report", "report.csv")));
        var resumed = new PipelineRunner(second).Run(steps, cancellation: TestContext.Current.CancellationToken);
        Assert.Equal(9, resumed.Cached.Count);
        Assert.Equal(report, CsvLines(second));
    }

    [Fact]
    public void Demo_writes_its_report_folder()
    {
        var output = Path.Combine(_dir, "demo");
        var (code, stdout, stderr) = CliHarness.Run("demo", "-o", output, "-t", "2");
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("RANDOM weights", stdout);
        foreach (var f in new[] { "report/report.md", "report/report.csv", "report/report-kld.png", "imatrix/heatmap.png", "pipeline.yaml" })
            Assert.True(File.Exists(Path.Combine(output, f)), f);
        var report = File.ReadAllText(Path.Combine(output, "report", "report.md"));
        Assert.Contains("Q4_K_M-layerwise.gguf", report);
        Assert.Contains("HellaSwag", report);
    }

    [Fact]
    public void A_failing_step_names_its_log_and_exits_1()
    {
        var text = Path.Combine(_dir, "short.txt");
        File.WriteAllText(text, "too short to make two chunks");
        var yaml = Path.Combine(_dir, "bad.yaml");
        File.WriteAllText(yaml, $"source: {TestData.StoriesModel}\noutput: bad\nevaluation: {{ text: {text}, context: 128 }}\ncandidates: [{{ type: Q8_0, imatrix: false }}]\n");
        var (code, _, stderr) = CliHarness.Run("run", yaml);
        Assert.Equal(1, code);
        Assert.Contains("logs/base-perplexity.log", stderr);
        Assert.Contains("failed", File.ReadAllText(Path.Combine(_dir, "bad", "pipeline.log")));
    }

    [Fact]
    public void Dry_run_lists_the_steps()
    {
        var (code, stdout, _) = CliHarness.Run("run", WritePipeline("dry"), "--dry-run");
        Assert.Equal(0, code);
        Assert.Contains("quantize-Q4_0-actsq", stdout);
        Assert.Contains("kl-divergence-IQ4_NL", stdout);
        Assert.False(File.Exists(Path.Combine(_dir, "dry", "report", "report.md")));
    }
}
