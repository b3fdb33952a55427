using System.Text.Json.Nodes;
using Xunit;

namespace Squeeze.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class PerplexityCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-ppl-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Wiki => TestData.Require("eval/wikitext-2-raw/wiki.test.raw");

    [Fact]
    public void Perplexity_prints_running_values_and_the_final_estimate_then_KL_against_its_own_base_is_zero()
    {
        var kl = Path.Combine(_dir, "base.kl");
        var json = Path.Combine(_dir, "ppl.json");
        var (code, stdout, stderr) = CliHarness.Run("perplexity", "-m", TestData.StoriesModel, "-f", Wiki, "-c", "256", "--chunks", "2", "-t", "1",
            "--kl-divergence-base", kl, "--json", json);
        Assert.True(code == 0, stderr);
        Assert.Matches(@"\[1\]\d+\.\d{4},\[2\]\d+\.\d{4},", stdout);
        Assert.Matches(@"Final estimate: PPL = \d+\.\d{4} \+/- \d+\.\d{5}", stdout);
        var result = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal("perplexity", (string?)result["squeeze_result"]);
        Assert.Equal(2, (int)result["result"]!["chunk_count"]!);
        Assert.Equal("stories260K.gguf", (string?)result["model"]!["file"]);

        var klJson = Path.Combine(_dir, "kl.json");
        (code, stdout, stderr) = CliHarness.Run("perplexity", "-m", TestData.StoriesModel, "--kl-divergence-base", kl, "--kl-divergence", "-t", "1", "--json", klJson);
        Assert.True(code == 0, stderr);
        Assert.Contains("====== KL divergence statistics ======", stdout);
        Assert.Matches(@"Same top p: 100\.000 ± 0\.000 %", stdout);
        Assert.Matches(@"99\.9%   KLD:", stdout);
        Assert.Matches(@" 0\.1%   Δp:", stdout);
        var klResult = JsonNode.Parse(File.ReadAllText(klJson))!;
        Assert.Equal("kl-divergence", (string?)klResult["squeeze_result"]);
        Assert.True(Math.Abs((double)klResult["result"]!["kld"]!["value"]!) < 1e-6);
    }

    [Fact]
    public void A_corrupt_base_file_gets_one_line_and_exit_code_1()
    {
        var kl = Path.Combine(_dir, "bad.kl");
        File.WriteAllBytes(kl, "_logits_\x02\0\0\0"u8.ToArray());
        var (code, _, stderr) = CliHarness.Run("perplexity", "-m", TestData.StoriesModel, "--kl-divergence-base", kl, "--kl-divergence");
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains("invalid logits file", stderr);
    }

    [Theory]
    [InlineData("--chunks", "0")]
    [InlineData("-c", "2")]
    [InlineData("-b", "0")]
    [InlineData("-t", "0")]
    public void Bad_settings_get_one_line_and_exit_code_1(string option, string value)
    {
        var (code, _, stderr) = CliHarness.Run("perplexity", "-m", TestData.StoriesModel, "-f", Wiki, option, value);
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Too_short_a_text_gets_one_line_and_exit_code_1()
    {
        var text = Path.Combine(_dir, "short.txt");
        File.WriteAllText(text, "Once upon a time.");
        var (code, _, stderr) = CliHarness.Run("perplexity", "-m", TestData.StoriesModel, "-f", text);
        Assert.Equal(1, code);
        Assert.Contains("needs at least 1024", stderr);
    }
}
