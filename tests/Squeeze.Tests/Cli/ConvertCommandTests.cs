using Squeeze.Gguf;
using Xunit;

namespace Squeeze.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class ConvertCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("squeeze-convert-cli-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Converts_a_checkpoint_and_prints_a_summary()
    {
        string model = Path.Combine(_root, "tiny-qwen3");
        HfCheckpoints.Write(model, new HfCheckpoints.Spec("Qwen3ForCausalLM", Hidden: 32, Heads: 2, KvHeads: 1, HeadDim: 16, FeedForward: 64, Layers: 1),
            TestData.Require("tokenizers/qwen3"));
        string output = Path.Combine(_root, "tiny.gguf");
        var (code, stdout, stderr) = CliHarness.Run("convert", model, "--outfile", output, "--outtype", "q8_0");
        Assert.Equal("", stderr);
        Assert.Equal(0, code);
        string text = stdout.ReplaceLineEndings(" ");
        Assert.Contains("qwen3, 14 tensors", text, StringComparison.Ordinal);
        Assert.Contains("pre-tokenizer qwen2", text, StringComparison.Ordinal);
        using var f = GgufFile.Open(output);
        Assert.Equal("qwen3", f.Architecture);
        Assert.Equal(7u, f[GgufKeys.General.FileType].Value);
        Assert.Equal(Squeeze.Quants.GgmlType.Q8_0, f.FindTensor("blk.0.ffn_up.weight")!.Type);
    }

    [Fact]
    public void A_folder_that_is_not_a_checkpoint_is_one_line_and_exit_code_1()
    {
        string output = Path.Combine(_root, "out.gguf");
        var (code, _, stderr) = CliHarness.Run("convert", _root, "--outfile", output);
        Assert.Equal(1, code);
        Assert.StartsWith("squeeze: config.json not found", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd('\n').Split('\n'));
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void An_unknown_outtype_is_refused()
    {
        var (code, _, _) = CliHarness.Run("convert", _root, "--outfile", Path.Combine(_root, "x.gguf"), "--outtype", "q4_0");
        Assert.NotEqual(0, code);
        Assert.False(File.Exists(Path.Combine(_root, "x.gguf")));
    }
}
