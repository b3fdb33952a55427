using Squeeze.Gguf;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Cli;

/// <summary><c>squeeze quantize --target-bpw / --target-size</c>: the planner chooses the types, rules are pinned.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class QuantizeTargetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-quantize-target-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_bpw_target_writes_a_file_within_the_budget_with_pinned_rules_kept()
    {
        var imatrix = Path.Combine(_dir, "im.gguf");
        Assert.Equal(0, CliHarness.Run("imatrix", "-m", TestData.StoriesModel, "-f", TestData.Require("calibration/groups_merged.txt"),
            "-c", "128", "--chunks", "2", "-o", imatrix, "-t", "2").ExitCode);
        var output = Path.Combine(_dir, "t9.gguf");
        // stories260K's ffn_down rows (172) fit no block type: pinned at f16, charged to the budget.
        var (code, stdout, stderr) = CliHarness.Run("quantize", "--imatrix", imatrix, "--target-bpw", "9", "--tensor-type", "ffn_down=f16",
            TestData.StoriesModel, output, "2");
        Assert.True(code == 0, stdout + stderr);
        using var file = GgufFile.Open(output);
        var weights = file.Tensors.Where(t => t.Shape.Count >= 2).ToList();
        double bpw = 8.0 * file.Tensors.Sum(t => GgmlTypes.RowSize(t.Type, t.Shape[0]) * t.RowCount) / file.Tensors.Sum(t => t.RowCount * t.Shape[0]);
        Assert.InRange(bpw, 8.0, 9.0);
        Assert.All(weights.Where(t => t.Name.Contains("ffn_down")), t => Assert.Equal(GgmlType.F16, t.Type));
        Assert.Contains(weights, t => t.Type != weights[0].Type); // a mix, not one type
    }

    [Theory]
    [InlineData("--imatrix is missing", "--target-bpw", "9")]
    [InlineData("IN OUT [NTHREADS]", "--imatrix", "IM", "--target-bpw", "9", "Q4_K_M")]
    [InlineData("cannot be combined", "--imatrix", "IM", "--target-size", "200K", "--pure")]
    public void Bad_target_command_lines_get_one_line_and_exit_1(string expected, params string[] options)
    {
        var imatrix = Path.Combine(_dir, "im.gguf");
        File.WriteAllBytes(imatrix, [0]);
        var args = options.Select(o => o == "IM" ? imatrix : o).ToList();
        int type = args.IndexOf("Q4_K_M");
        if (type >= 0) args.RemoveAt(type);
        args.AddRange([TestData.StoriesModel, Path.Combine(_dir, "out.gguf")]);
        if (type >= 0) args.Add("Q4_K_M");
        var (code, _, stderr) = CliHarness.Run(["quantize", .. args]);
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains(expected == "--imatrix is missing" ? "need --imatrix" : expected, stderr);
    }
}
