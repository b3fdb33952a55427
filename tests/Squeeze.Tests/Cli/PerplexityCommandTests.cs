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
        // The base file keeps log-probabilities as 16-bit steps of (max - min)/65535, so even the same logits give a
        // mean KLD of order 1e-6 of either sign (Σ p_base(log p_base - log p) with p_base rounded). Over these 2 x 128
        // scored tokens it is +1.157e-6 with logits that are llama.cpp's bits (so llama-perplexity gives the same), and was
        // -1.0e-6 with session 2's logits: this CLI test bounds the rounding noise at 2e-6; the issue's "below 1e-6" is held
        // on a longer text by PerplexityOracleTests.A_model_against_its_own_base_file_has_no_divergence_and_the_same_top_token.
        double kld = (double)klResult["result"]!["kld"]!["value"]!;
        Assert.True(Math.Abs(kld) < 2e-6, $"KLD against its own base file: {kld:E3}");
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
    [InlineData("--ppl-stride", "-1")]
    [InlineData("--ppl-output-type", "2")]
    public void Bad_settings_get_one_line_and_exit_code_1(string option, string value)
    {
        var (code, _, stderr) = CliHarness.Run("perplexity", "-m", TestData.StoriesModel, "-f", Wiki, option, value);
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Output_type_1_prints_one_line_per_chunk_with_offset_ppl_mean_and_deviation()
    {
        // -b 512 with -c 128: four chunks per batch, all printed with the batch's offset 0 as llama-perplexity prints them.
        var (code, stdout, stderr) = CliHarness.Run("perplexity", "-m", TestData.StoriesModel, "-f", Wiki, "-c", "128", "-b", "512", "--chunks", "5",
            "-t", "1", "--ppl-output-type", "1");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n').Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^ {0,7}\d+  \d+\.\d{4}  \d+\.\d{6}  \d+\.\d{6}$")).ToList();
        Assert.Equal(5, lines.Count);
        Assert.Equal([0, 0, 0, 0, 512], lines.Select(l => int.Parse(l[..8].Trim(), System.Globalization.CultureInfo.InvariantCulture)));
        Assert.DoesNotContain("[1]", stdout);
        Assert.Matches(@"Final estimate: PPL = \d+\.\d{4} \+/- \d+\.\d{5}", stdout);
    }

    [Fact]
    public void Strided_perplexity_prints_a_value_per_window_and_saves_the_stride()
    {
        var json = Path.Combine(_dir, "strided.json");
        var (code, stdout, stderr) = CliHarness.Run("perplexity", "-m", TestData.StoriesModel, "-f", Wiki, "-c", "128", "-b", "128", "--ppl-stride", "64",
            "--chunks", "3", "-t", "1", "--json", json);
        Assert.True(code == 0, stderr);
        Assert.Contains("windows of 256 tokens", stdout);
        Assert.Matches(@"\[1\]\d+\.\d{4},\[2\]\d+\.\d{4},\[3\]\d+\.\d{4},", stdout);
        Assert.Matches(@"Strided estimate: PPL = \d+\.\d{4} \+/- \d+\.\d{5} \(3 windows of 256, stride 64, 192 tokens scored", stdout);
        var result = JsonNode.Parse(File.ReadAllText(json))!["result"]!;
        Assert.Equal(64, (int)result["stride"]!);
        Assert.Equal(256, (int)result["context_size"]!);

        (code, stdout, stderr) = CliHarness.Run("perplexity", "-m", TestData.StoriesModel, "-f", Wiki, "-c", "128", "-b", "128", "--ppl-stride", "64",
            "--chunks", "2", "-t", "1", "--ppl-output-type", "1");
        Assert.True(code == 0, stderr);
        Assert.Matches(@"(?m)^       0  \d+\.\d{4}$", stdout);
        Assert.Matches(@"(?m)^      64  \d+\.\d{4}$", stdout);
    }

    [Theory]
    [InlineData("512", "64", "-b 128")]          // the default-like batch of 4 contexts: llama-perplexity cannot decode a window
    [InlineData("128", "1000", "must be smaller than the window")]
    public void Strided_settings_llama_perplexity_cannot_run_get_one_line_and_exit_code_1(string batch, string stride, string message)
    {
        var (code, _, stderr) = CliHarness.Run("perplexity", "-m", TestData.StoriesModel, "-f", Wiki, "-c", "128", "-b", batch, "--ppl-stride", stride);
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains(message, stderr);
    }

    [Theory]
    [InlineData(false, "cannot write a KL-divergence base file")]
    [InlineData(true, "applies to perplexity, not to --kl-divergence")]
    public void Stride_with_a_KL_divergence_mode_gets_one_line_and_exit_code_1(bool compare, string message)
    {
        var args = new List<string> { "perplexity", "-m", TestData.StoriesModel, "-f", Wiki, "-c", "128", "-b", "128", "--ppl-stride", "64",
            "--kl-divergence-base", Path.Combine(_dir, "x.kl") };
        if (compare) args.Add("--kl-divergence");
        var (code, _, stderr) = CliHarness.Run([.. args]);
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains(message, stderr);
        Assert.False(File.Exists(Path.Combine(_dir, "x.kl")));
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
