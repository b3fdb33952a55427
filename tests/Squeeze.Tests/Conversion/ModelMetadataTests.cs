using Squeeze.Conversion;
using Xunit;

namespace Squeeze.Tests.Conversion;

/// <summary>
/// gguf-py's metadata heuristics. Expected values were printed by gguf-py itself (gguf-py/gguf/metadata.py and
/// utility.py at llama.cpp 815a2a591) for the same inputs.
/// </summary>
public sealed class ModelMetadataTests
{
    [Theory]
    [InlineData("Qwen/Qwen3-8B-Base", 19521920L, "Qwen3-8B-Base", "Qwen", "Qwen3", "8b-Base", null, null)]
    [InlineData("meta-llama/Meta-Llama-3.1-8B-Instruct", 8_030_261_248L, "Meta-Llama-3.1-8B-Instruct", "meta-llama", "Meta-Llama-3.1", "Instruct", null, "8B")]
    [InlineData("mistralai/Mixtral-8x7B-Instruct-v0.1", 46_702_792_704L, "Mixtral-8x7B-Instruct-v0.1", "mistralai", "Mixtral", "Instruct", "v0.1", "8x7B")]
    [InlineData("bigscience/bloom-7b1", 7_069_016_064L, "bloom-7b1", "bigscience", "bloom", null, null, "7.1B")]
    [InlineData("TinyLlama-1.1B-Chat-v1.0", 0L, "TinyLlama-1.1B-Chat-v1.0", null, "TinyLlama", "Chat", "v1.0", "1.1B")]
    [InlineData("./local-model", 0L, "local-model", null, null, null, null, null)]
    [InlineData("microsoft/phi-2", 0L, "phi-2", "microsoft", "phi", null, "2", null)]
    [InlineData("Qwen2.5-Coder-0.5B-Instruct-GGUF", 494_032_768L, "Qwen2.5-Coder-0.5B-Instruct-GGUF", null, "Qwen2.5-Coder", "Instruct-GGUF", null, "0.5B")]
    [InlineData("gpt2", 0L, "gpt2", null, null, null, null, null)]
    [InlineData("some model name", 0L, "some model name", null, null, null, null, null)]
    public void Model_id_components_are_gguf_pys(string id, long totalParams, string? full, string? org, string? basename, string? finetune, string? version, string? size)
    {
        Assert.Equal((full, org, basename, finetune, version, size), ModelMetadata.ModelIdComponents(id, totalParams));
    }

    [Theory]
    [InlineData("qwen3-8b-instruct", "Qwen3 8b Instruct")]
    [InlineData("Qwen3 8B", "Qwen3 8B")]
    [InlineData("v1.0 model", "v1.0 Model")]
    [InlineData("abc1def ghi", "Abc1Def Ghi")]
    public void Titles_are_gguf_pys(string id, string title) => Assert.Equal(title, ModelMetadata.IdToTitle(id));

    [Theory]
    [InlineData(19521920L, "20M")]
    [InlineData(999_499L, "999K")]
    [InlineData(1_234_567_890L, "1.2B")]
    [InlineData(8_030_261_248L, "8.0B")]
    [InlineData(125_000L, "125K")]
    [InlineData(2_500_000L, "2.5M")]
    [InlineData(995_000_000L, "995M")]
    [InlineData(12_500_000L, "12M")]      // 12.5 rounds half to even
    [InlineData(1_500_000_000_000L, "1.5T")]
    [InlineData(7_250_000_000L, "7.3B")]  // 7250000000 * 1e-9 is a hair above 7.25
    public void Size_labels_round_as_python_prints(long count, string label) =>
        Assert.Equal(label, ModelMetadata.SizeLabelOf(count, count, 0, 0));

    [Fact]
    public void Expert_models_are_labelled_by_expert_count() =>
        Assert.Equal("8x7.2B", ModelMetadata.SizeLabelOf(46_702_792_704, 1_602_224_128, 5_637_537_792, 8));

    [Fact]
    public void Model_card_front_matter_is_read_as_pyyaml_reads_it()
    {
        string dir = Directory.CreateTempSubdirectory("squeeze-card-").FullName;
        try
        {
            // "language: no" is a YAML 1.1 boolean: gguf-py adds no language; a list of licences is joined with commas.
            File.WriteAllText(Path.Combine(dir, "README.md"), "---\nlicense:\n- mit\n- apache-2.0\ntags: single\nlanguage: no\nversion: v2\n---\ntext\n");
            var m = ModelMetadata.Load(dir, 0);
            Assert.Equal("mit,apache-2.0", m.License);
            Assert.Equal(["single"], m.Tags!);
            Assert.Empty(m.Languages!);
            Assert.Equal("v2", m.Version);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
