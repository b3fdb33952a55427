using Squeeze.Tests.Quantization;
using Xunit;

namespace Squeeze.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class PlanCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("squeeze-plan-cli-");

    public void Dispose() => _dir.Delete(true);

    [Fact]
    public void Plan_writes_a_tensor_type_file_heatmap_and_model_within_the_target()
    {
        var (model, _, imatrix) = PlannerSyntheticTests.Setup(_dir.FullName);
        string plan = Path.Combine(_dir.FullName, "plan.txt"), png = Path.Combine(_dir.FullName, "plan.png"), gguf = Path.Combine(_dir.FullName, "out.gguf");
        var (code, stdout, stderr) = CliHarness.Run("plan", "-m", model, "--imatrix", imatrix, "--target-bpw", "5.0",
            "--candidates", "q2_K,q3_K,q4_K,q5_K,q6_K,q4_0,q8_0", "--pin", "output=q8_0", "-o", plan, "--heatmap", png, "--quantize", gguf,
            "--cache-dir", Path.Combine(_dir.FullName, "cache"), "-t", "2");
        Assert.True(code == 0, stderr);
        Assert.Contains("predicted KLD", stdout);
        Assert.Contains("no calibration text", stdout);
        var lines = File.ReadAllLines(plan);
        Assert.Contains(@"^output\.weight$=q8_0", lines);
        Assert.All(lines, l => Assert.Matches(@"^\^[a-z0-9_\\.]+\$=[a-z0-9_A-Z]+$", l));
        Assert.True(new FileInfo(png).Length > 1000);
        using var f = Squeeze.Gguf.GgufFile.Open(gguf);
        Assert.True(f.Tensors.Sum(t => t.ByteSize) * 8.0 / f.Tensors.Sum(t => t.ElementCount) <= 5.0);
    }

    [Theory]
    [InlineData("--target-bpw", "4", "--target-size", "1M")]
    [InlineData("--target-bpw", "0", null, null)]
    [InlineData("--target-size", "12Q", null, null)]
    [InlineData("--target-bpw", "4", "--pin", "attn_v")]
    [InlineData("--target-bpw", "4", "--candidates", "q4_K,q9_K")]
    [InlineData("--target-bpw", "0.5", null, null)]
    [InlineData("--target-bpw", "4", "--probes", "every")]
    public void Bad_arguments_get_one_line_and_exit_code_1(string o1, string v1, string? o2, string? v2)
    {
        var (model, _, imatrix) = PlannerSyntheticTests.Setup(_dir.FullName);
        var args = new List<string> { "plan", "-m", model, "--imatrix", imatrix, o1, v1, "--no-cache", "--candidates", "q4_K,q8_0" };
        if (o2 is not null) { if (o2 == "--candidates") args.RemoveRange(args.Count - 2, 2); args.Add(o2); args.Add(v2!); }
        var (code, _, stderr) = CliHarness.Run([.. args]);
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Neither_target_nor_a_missing_imatrix_file_is_accepted()
    {
        var (model, _, imatrix) = PlannerSyntheticTests.Setup(_dir.FullName);
        var (code, _, stderr) = CliHarness.Run("plan", "-m", model, "--imatrix", imatrix);
        Assert.Equal(1, code);
        Assert.Contains("exactly one", stderr);
        (code, _, stderr) = CliHarness.Run("plan", "-m", model, "--imatrix", Path.Combine(_dir.FullName, "none.dat"), "--target-bpw", "4");
        Assert.Equal(1, code);
        Assert.Contains("not found", stderr);
    }
}
