using Squeeze.Gguf;
using Squeeze.Quants;
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
    public void Mixture_dry_run_gives_rules_layers_and_bits_per_weight()
    {
        var (code, stdout, stderr) = CliHarness.Run("quantize", "--dry-run", TestData.StoriesModel, Out, "Q4_K_M");
        Assert.True(code == 0, stderr);
        Assert.Contains("q8_0", stdout); // the output: its 64-wide rows do not fit Q4_K
        Assert.Contains("fallback", stdout);
        Assert.Contains("per layer", stdout);
        Assert.Contains("bpw", stdout);
        Assert.False(File.Exists(Out));
    }

    [Fact]
    public void Output_name_defaults_as_llama_quantize_and_threads_may_follow_the_type()
    {
        string input = Path.Combine(_dir, "model.gguf");
        File.Copy(TestData.StoriesModel, input);
        var (code, _, stderr) = CliHarness.Run("quantize", input, "15", "2");
        Assert.True(code == 0, stderr);
        Assert.True(File.Exists(Path.Combine(_dir, "ggml-model-Q4_K.gguf")));
        (code, _, stderr) = CliHarness.Run("quantize", input, "q8_0");
        Assert.Equal(1, code); // stories260K's 172-wide ffn_down rows fit no Q8_0 block
        Assert.Contains("ffn_down", stderr);
        (code, _, stderr) = CliHarness.Run("quantize", input, Out, "Q4_K_M", "two");
        Assert.Equal(1, code);
        Assert.Contains("thread count", stderr);
    }

    [Fact]
    public void Rules_pruning_and_overrides_reach_the_file()
    {
        string rules = Path.Combine(_dir, "rules.txt");
        File.WriteAllText(rules, "blk\\.1\\.ffn_up=q8_0\n");
        var (code, stdout, stderr) = CliHarness.Run("quantize", "--tensor-type", "ATTN_Q=q5_0", "--tensor-type-file", rules, "--prune-layers", "0,3",
            "--override-kv", "general.name=str:pruned", "--override-kv", "llama.context_length=int:-64", TestData.StoriesModel, Out, "Q4_K_M", "2");
        Assert.True(code == 0, stderr);
        Assert.Contains("pruned: ", stdout);
        using var f = GgufFile.Open(Out);
        Assert.Equal(3u, (uint)f["llama.block_count"].Value);
        Assert.Equal("pruned", f[GgufKeys.General.Name].AsString());
        Assert.Equal(GgufValue.UInt32(64), f["llama.context_length"]);
        Assert.Null(f.FindTensor("blk.3.attn_q.weight"));
        Assert.Equal(GgmlType.Q5_0, f.FindTensor("blk.0.attn_q.weight")!.Type);
        Assert.Equal(GgmlType.Q8_0, f.FindTensor("blk.1.ffn_up.weight")!.Type);
    }

    [Theory]
    [InlineData("--tensor-type", "attn_q", "PATTERN=TYPE")]
    [InlineData("--tensor-type", "attn_q=q9_9", "not a ggml type")]
    [InlineData("--tensor-type", "attn_(q=q4_0", "regular expression")]
    [InlineData("--prune-layers", "1,x", "invalid layer id")]
    [InlineData("--override-kv", "general.name=text:x", "int, float, bool or str")]
    [InlineData("--override-kv", "general.flag=bool:yes", "'true' or 'false'")]
    public void Bad_rules_get_one_line_and_exit_code_1(string option, string value, string message)
    {
        var (code, _, stderr) = CliHarness.Run("quantize", option, value, TestData.StoriesModel, Out, "Q4_K_M");
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains(message, stderr);
        Assert.False(File.Exists(Out));
    }

    [Fact]
    public void A_type_that_needs_an_imatrix_is_refused_without_one()
    {
        // tiny-qwen3's rows fit IQ2_XXS (stories260K's would fall back to IQ4_NL, which needs none).
        var (code, _, stderr) = CliHarness.Run("quantize", TestData.QwenF16Model, Out, "IQ2_XXS");
        Assert.Equal(1, code);
        Assert.Contains("--imatrix", stderr);
        Assert.False(File.Exists(Out));
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
