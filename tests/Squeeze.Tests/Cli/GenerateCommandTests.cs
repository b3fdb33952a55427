using Xunit;

namespace Squeeze.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public class GenerateCommandTests
{
    [Fact]
    public void Greedy_generation_from_BOS_tells_stories260Ks_story()
    {
        // The transcript llama.cpp gives (../shared/data/README.md); token-for-token equality is an oracle test.
        var (code, stdout, stderr) = CliHarness.Run("generate", "-m", TestData.StoriesModel, "-n", "40", "-t", "1");
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.StartsWith(" Once upon a time, there was a little girl named Lily. She loved to play outside in the park.", stdout);
    }

    [Fact]
    public void Sampling_is_reproducible_by_seed_and_ids_print_as_a_list()
    {
        string[] args = ["generate", "-m", TestData.StoriesModel, "-p", "Once upon a time", "-n", "12", "--temp", "0.9", "--seed", "7", "--ids"];
        var first = CliHarness.Run(args);
        var second = CliHarness.Run(args);
        Assert.Equal(0, first.ExitCode);
        Assert.Matches(@"^\[\d+(, \d+){11}\]\s*$", first.Out);
        Assert.Equal(first.Out, second.Out);
    }

    [Theory]
    [InlineData("-n", "-1")]
    [InlineData("--temp", "-0.5")]
    [InlineData("-t", "0")]
    public void Bad_settings_get_one_line_and_exit_code_1(string option, string value)
    {
        var (code, _, stderr) = CliHarness.Run("generate", "-m", TestData.StoriesModel, option, value);
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }

    [Fact]
    public void A_file_that_is_not_a_model_gets_one_line_and_exit_code_1()
    {
        var (code, _, stderr) = CliHarness.Run("generate", "-m", TestData.Require("tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf"));
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }
}
