using System.Text.Json;
using Xunit;

namespace Squeeze.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public class InspectCommandTests
{
    [Fact]
    public void Shows_the_tensors_and_layers_of_stories260K()
    {
        var (code, stdout, stderr) = CliHarness.Run("inspect", TestData.StoriesModel, "--tensors");
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Contains("blk.4.ffn_down.weight", stdout);
        Assert.Contains("llama", stdout);
        Assert.Contains("260.03 K parameters", stdout);
    }

    [Fact]
    public void Json_is_machine_readable()
    {
        var (code, stdout, _) = CliHarness.Run("inspect", TestData.StoriesModel, "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        var tensors = root.GetProperty("tensors");
        Assert.Equal(47, tensors.GetArrayLength());
        var first = tensors[0];
        Assert.Equal("token_embd.weight", first.GetProperty("name").GetString());
        Assert.Equal("f32", first.GetProperty("type").GetString());
        Assert.Equal([64L, 512L], first.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(131072, first.GetProperty("bytes").GetInt64());
        Assert.Equal(0, first.GetProperty("offset").GetInt64());
        Assert.Equal(260032, root.GetProperty("totals").GetProperty("parameters").GetInt64());
        Assert.Equal(5, root.GetProperty("layers").GetArrayLength());
        Assert.Equal("llama", root.GetProperty("metadata").GetProperty("general.architecture").GetProperty("value").GetString());
        Assert.Equal(512, root.GetProperty("metadata").GetProperty("tokenizer.ggml.tokens").GetProperty("count").GetInt32());
    }

    [Fact]
    public void A_file_that_is_not_gguf_gets_one_line_and_exit_code_1()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "definitely not a model");
            var (code, stdout, stderr) = CliHarness.Run("inspect", path);
            Assert.Equal(1, code);
            Assert.Equal("", stdout);
            Assert.Single(stderr.TrimEnd().Split('\n'));
            Assert.Contains("header.magic", stderr);
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData("")]
    [InlineData("GG")]
    [InlineData("GGUF\u0003\u0000\u0000\u0000")]
    public void Truncated_files_get_one_line_and_exit_code_1(string content)
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, content);
            var (code, _, stderr) = CliHarness.Run("inspect", path);
            Assert.Equal(1, code);
            Assert.Single(stderr.TrimEnd().Split('\n'));
            Assert.DoesNotContain("   at ", stderr);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void A_missing_file_gets_one_line_and_exit_code_1()
    {
        var (code, _, stderr) = CliHarness.Run("inspect", Path.Combine(Path.GetTempPath(), "no-such-file.gguf"));
        Assert.Equal(1, code);
        Assert.StartsWith("squeeze: file not found", stderr);
    }

    [Fact]
    public void Help_lists_the_commands_and_version_prints()
    {
        var (code, stdout, _) = CliHarness.Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("inspect", stdout);
        (code, stdout, _) = CliHarness.Run("--version");
        Assert.Equal(0, code);
        Assert.Matches(@"^\d+\.\d+\.\d+", stdout);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection
{
    public const string Name = "Console redirection";
}
