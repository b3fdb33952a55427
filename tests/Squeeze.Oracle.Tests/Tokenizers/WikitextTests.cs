using System.Diagnostics;
using Squeeze.Gguf;
using Squeeze.Tests;
using Squeeze.Tokenizers;
using Xunit;

namespace Squeeze.Oracle.Tests.Tokenizers;

/// <summary>The whole wikitext-2 test file (about 1.3 MB), as the perplexity tools tokenize it: equal to llama.cpp's
/// tokens, and fast.</summary>
public class WikitextTests
{
    [Theory]
    [InlineData("stories260K")]
    [InlineData("qwen2")]
    [InlineData("deepseek-llm")]
    [InlineData("gpt-2")]
    public void Wikitext_tokenizes_as_in_llama_cpp_well_under_ten_seconds(string name)
    {
        var text = File.ReadAllBytes(TestData.Require("eval/wikitext-2-raw/wiki.test.raw"));
        string path = name == "stories260K" ? TestData.StoriesModel : Vocabs.Path(name);
        Tokenizer ours;
        using (var file = GgufFile.Open(path)) ours = Tokenizer.FromGguf(file);
        ours.Encode("warm up"u8, true, false);

        var clock = Stopwatch.StartNew();
        var got = ours.Encode(text, addSpecial: true, parseSpecial: false);
        var elapsed = clock.Elapsed;
        TestContext.Current.TestOutputHelper?.WriteLine($"{name}: {text.Length:N0} bytes -> {got.Length:N0} tokens in {elapsed.TotalSeconds:F2} s");

        using var theirs = OracleVocab.Load(path);
        clock.Restart();
        var expected = theirs.Tokenize(text, addSpecial: true, parseSpecial: false);
        TestContext.Current.TestOutputHelper?.WriteLine($"{name}: llama.cpp took {clock.Elapsed.TotalSeconds:F2} s");
        Assert.Equal(expected.Length, got.Length);
        Assert.True(expected.AsSpan().SequenceEqual(got), $"{name}: first difference at token {expected.AsSpan().CommonPrefixLength(got)}");
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"{name} took {elapsed.TotalSeconds:F1} s");
    }
}
