using Squeeze.Gguf;
using Xunit;

namespace Squeeze.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class QuantizeCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-cli-quantize-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Out => Path.Combine(_dir, "out.gguf");

    [Fact]
    public void Quantizes_stories260K_and_prints_a_summary()
    {
        var (code, stdout, stderr) = CliHarness.Run("quantize", TestData.StoriesModel, Out, "f32", "--pure", "--threads", "2");
        Assert.True(code == 0, stderr);
        Assert.Equal("", stderr);
        Assert.Contains("f32", stdout);
        Assert.Contains("47", stdout); // tensors
        Assert.Contains("32.00", stdout); // bits per weight
        using var f = GgufFile.Open(Out);
        Assert.Equal(0u, (uint)f[GgufKeys.General.FileType].Value);
        Assert.Equal(2u, (uint)f[GgufKeys.General.QuantizationVersion].Value);
    }

    [Fact]
    public void Dry_run_lists_types_and_reasons_and_writes_nothing()
    {
        var (code, stdout, stderr) = CliHarness.Run("quantize", TestData.StoriesModel, Out, "Q4_K_M", "--pure", "--dry-run");
        Assert.True(code == 0, stderr);
        Assert.Contains("q5_0", stdout); // 64-wide rows fall back from q4_K
        Assert.Contains("kept", stdout);
        Assert.Contains("fallback", stdout);
        Assert.False(File.Exists(Out));
    }

    [Theory]
    [InlineData("Q9_K", "is not a file type")]
    [InlineData("q8_k", "is not a file type")]
    public void An_unknown_type_gets_one_line_and_exit_code_1(string type, string message)
    {
        var (code, stdout, stderr) = CliHarness.Run("quantize", TestData.StoriesModel, Out, type, "--pure");
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains(message, stderr);
        Assert.False(File.Exists(Out));
    }

    [Fact]
    public void Without_pure_it_says_what_to_do()
    {
        var (code, _, stderr) = CliHarness.Run("quantize", TestData.StoriesModel, Out, "Q4_K_M");
        Assert.Equal(1, code);
        Assert.Contains("--pure", stderr);
    }

    [Fact]
    public void Rows_that_fit_no_fallback_are_refused_naming_the_tensor()
    {
        // stories260K's ffn_down rows are 172 wide: Q8_0 has no fallback (llama.cpp refuses the same way).
        var (code, _, stderr) = CliHarness.Run("quantize", TestData.StoriesModel, Out, "Q8_0", "--pure");
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains("ffn_down.weight", stderr);
        Assert.False(File.Exists(Out));
    }

    [Fact]
    public void Records_the_imatrix_as_llama_quantize()
    {
        var im = Path.Combine(_dir, "stories.imatrix.dat");
        File.WriteAllBytes(im, ImatrixFiles.LegacyBytes([new("blk.0.attn_q.weight", 4, Enumerable.Repeat(2f, 64).ToArray())], 17, "tiny.txt"));
        var (code, stdout, stderr) = CliHarness.Run("quantize", TestData.StoriesModel, Out, "F32", "--pure", "--imatrix", im);
        Assert.True(code == 0, stderr);
        Assert.Contains("imatrix: 1 entries", stdout);
        using var f = GgufFile.Open(Out);
        Assert.Equal(im, f[GgufKeys.Quantize.ImatrixFile].AsString());
        Assert.Equal("tiny.txt", f[GgufKeys.Quantize.ImatrixDataset].AsString());
        Assert.Equal(GgufValue.UInt32(1), f[GgufKeys.Quantize.ImatrixEntriesCount]);
        Assert.Equal(GgufValue.UInt32(17), f[GgufKeys.Quantize.ImatrixChunksCount]);
    }

    [Fact]
    public void A_corrupt_imatrix_gets_one_line_and_exit_code_1()
    {
        var im = Path.Combine(_dir, "bad.dat");
        File.WriteAllBytes(im, [1, 0, 0, 0, 9]);
        var (code, _, stderr) = CliHarness.Run("quantize", TestData.StoriesModel, Out, "F32", "--pure", "--imatrix", im);
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains("invalid imatrix", stderr);
    }

    [Fact]
    public void Missing_files_and_bad_thread_counts_get_one_line()
    {
        var (code, _, stderr) = CliHarness.Run("quantize", Path.Combine(_dir, "none.gguf"), Out, "F32", "--pure");
        Assert.Equal(1, code);
        Assert.StartsWith("squeeze: file not found", stderr);
        (code, _, stderr) = CliHarness.Run("quantize", TestData.StoriesModel, Out, "F32", "--pure", "--threads", "0");
        Assert.Equal(1, code);
        Assert.Contains("--threads", stderr);
        (code, _, stderr) = CliHarness.Run("quantize", TestData.StoriesModel, TestData.StoriesModel, "F32", "--pure");
        Assert.Equal(1, code);
        Assert.Contains("same file", stderr);
    }
}
