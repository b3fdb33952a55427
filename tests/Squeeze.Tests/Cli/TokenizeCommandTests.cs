using Xunit;

namespace Squeeze.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public class TokenizeCommandTests
{
    private static string SpmVocab => TestData.Require("tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf");

    [Fact]
    public void Ids_of_a_prompt_start_with_bos()
    {
        // llama.cpp's test vector for " Hello world" in the LLaMA SPM vocabulary is 29871 15043 3186 (ids after BOS).
        var (code, stdout, stderr) = CliHarness.Run("tokenize", "-m", SpmVocab, "-p", " Hello world", "--ids");
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Equal("[1, 29871, 15043, 3186]\n", stdout);
    }

    [Fact]
    public void No_bos_drops_the_special_tokens()
    {
        var (code, stdout, _) = CliHarness.Run("tokenize", "-m", SpmVocab, "-p", " Hello world", "--ids", "--no-bos");
        Assert.Equal(0, code);
        Assert.Equal("[29871, 15043, 3186]\n", stdout);
    }

    [Fact]
    public void Pieces_are_listed_one_per_line()
    {
        var (code, stdout, _) = CliHarness.Run("tokenize", "-m", SpmVocab, "-p", "Hello world");
        Assert.Equal(0, code);
        Assert.Equal("     1 -> '<s>'\n 15043 -> ' Hello'\n  3186 -> ' world'\n", stdout);
    }

    [Fact]
    public void Parse_special_turns_control_text_into_tokens()
    {
        var (_, plain, _) = CliHarness.Run("tokenize", "-m", SpmVocab, "-p", "</s>", "--ids", "--no-bos");
        var (code, parsed, _) = CliHarness.Run("tokenize", "-m", SpmVocab, "-p", "</s>", "--ids", "--no-bos", "--parse-special");
        Assert.Equal(0, code);
        Assert.Equal("[2]\n", parsed);
        Assert.NotEqual(parsed, plain);
    }

    [Fact]
    public void A_file_is_read_whole()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "Hello world");
            var (code, stdout, _) = CliHarness.Run("tokenize", "-m", SpmVocab, "-f", path, "--ids");
            Assert.Equal(0, code);
            Assert.Equal("[1, 15043, 3186]\n", stdout);
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData]
    [InlineData("-p", "x", "-f", "y")]
    public void Exactly_one_text_source_is_required(params string[] extra)
    {
        var (code, stdout, stderr) = CliHarness.Run(["tokenize", "-m", SpmVocab, .. extra]);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains("exactly one of -p TEXT or -f FILE", stderr);
    }

    [Fact]
    public void A_model_without_a_tokenizer_is_a_user_error()
    {
        var path = Path.GetTempFileName();
        try
        {
            new Squeeze.Gguf.GgufWriter().Set(Squeeze.Gguf.GgufKeys.General.Architecture, Squeeze.Gguf.GgufValue.String("llama")).WriteTo(path);
            var (code, _, stderr) = CliHarness.Run("tokenize", "-m", path, "-p", "hi");
            Assert.Equal(1, code);
            Assert.Single(stderr.TrimEnd().Split('\n'));
            Assert.Contains("tokenizer.ggml.model", stderr);
        }
        finally { File.Delete(path); }
    }
}
