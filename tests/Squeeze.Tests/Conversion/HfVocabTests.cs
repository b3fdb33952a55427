using System.Text.Json.Nodes;
using Squeeze.Conversion;
using Xunit;

namespace Squeeze.Tests.Conversion;

public sealed class HfVocabTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-vocab-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// Qwen3-Embedding's tokenizer appends &lt;|endoftext|&gt; to every sequence (a TemplateProcessing post-processor).
    /// convert_hf_to_gguf.py lists the hash of its check-text tokens (d4540891...) as "qwen2"; reproducing that hash
    /// shows the post-processor is applied as transformers applies it. gguf-py's SpecialVocab then makes the trailing
    /// token the EOS (the configured &lt;|im_end|&gt; becomes EOT), sets add_eos, and reads add_sep from the pair template.
    /// </summary>
    [Fact]
    public void A_trailing_template_token_is_hashed_and_becomes_eos_as_in_gguf_py()
    {
        HfCheckpoints.CopyTokenizer(TestData.Require("tokenizers/qwen3"), _dir);
        string path = Path.Combine(_dir, "tokenizer.json");
        var tok = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        JsonObject Seq(string id) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = 0 } };
        JsonObject Eot() => new() { ["SpecialToken"] = new JsonObject { ["id"] = "<|endoftext|>", ["type_id"] = 0 } };
        tok["post_processor"] = new JsonObject
        {
            ["type"] = "TemplateProcessing",
            ["single"] = new JsonArray(Seq("A"), Eot()),
            ["pair"] = new JsonArray(Seq("A"), Eot(), Seq("B"), Eot()),
            ["special_tokens"] = new JsonObject
            {
                ["<|endoftext|>"] = new JsonObject { ["id"] = "<|endoftext|>", ["ids"] = new JsonArray(151643), ["tokens"] = new JsonArray("<|endoftext|>") },
            },
        };
        File.WriteAllText(path, tok.ToJsonString());
        File.WriteAllText(Path.Combine(_dir, "config.json"), "{\"bos_token_id\": 151643, \"eos_token_id\": 151645}");

        var vocab = HfVocab.Load(_dir, 151669);
        Assert.Equal("d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c", vocab.CheckHash);
        Assert.Equal("qwen2", vocab.Pre);
        Assert.Equal([new("eos", 151643), new("pad", 151643), new("eot", 151645), new("bos", 151643)], vocab.SpecialIds);
        Assert.Equal([new("eos", true), new("sep", false), new("bos", false)], vocab.AddSpecial);
    }

    [Fact]
    public void Qwen3s_tokenizer_hashes_to_qwen2()
    {
        HfCheckpoints.CopyTokenizer(TestData.Require("tokenizers/qwen3"), _dir);
        var vocab = HfVocab.Load(_dir, 151936);
        Assert.Equal("e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea", vocab.CheckHash); // Qwen/Qwen1.5-7B's entry
        Assert.Equal("qwen2", vocab.Pre);
    }
}
