using System.Text.Json.Nodes;
using Squeeze.Conversion;
using Xunit;

namespace Squeeze.Tests.Conversion;

/// <summary>
/// Inconsistent or incomplete checkpoints: one clear error (an <see cref="InvalidInputException"/> on one line) and no
/// output file, not even a temporary one. One test per rule.
/// </summary>
public sealed class ConverterValidationTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("squeeze-convert-").FullName;
    private string Model => Path.Combine(_root, "model");
    private string Output => Path.Combine(_root, "out", "model.gguf");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static readonly HfCheckpoints.Spec Tiny = new("Qwen3ForCausalLM", Hidden: 32, Heads: 2, KvHeads: 1, HeadDim: 16, FeedForward: 32,
        Layers: 2, VocabSize: 300, Shards: 2);

    private void WriteTiny(HfCheckpoints.Spec? spec = null, bool tokenizer = true)
    {
        HfCheckpoints.Write(Model, spec ?? Tiny);
        if (tokenizer) TinyTokenizer.Write(Model, 280);
    }

    private string Fails(ConvertOptions? options = null)
    {
        var e = Assert.ThrowsAny<InvalidInputException>(() => HfConverter.Convert(Model, Output, options ?? new ConvertOptions()));
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(Output), "no output file after a failed conversion");
        var outDir = Path.GetDirectoryName(Output)!;
        Assert.True(!Directory.Exists(outDir) || !Directory.EnumerateFileSystemEntries(outDir).Any(), "no temporary file left behind");
        return e.Message;
    }

    private void EditConfig(Action<JsonObject> edit)
    {
        string path = Path.Combine(Model, "config.json");
        var c = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(c);
        File.WriteAllText(path, c.ToJsonString());
    }

    [Fact]
    public void A_missing_folder_is_an_error() => Assert.Contains("not found", Fails(), StringComparison.Ordinal);

    [Fact]
    public void A_missing_config_is_an_error()
    {
        WriteTiny();
        File.Delete(Path.Combine(Model, "config.json"));
        Assert.Contains("config.json", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_config_that_is_not_json_is_an_error()
    {
        WriteTiny();
        File.WriteAllText(Path.Combine(Model, "config.json"), "{\"architectures\": [");
        Assert.Contains("not valid JSON", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void An_unsupported_architecture_is_an_error()
    {
        WriteTiny();
        EditConfig(c => c["architectures"] = new JsonArray("GPT2LMHeadModel"));
        Assert.Contains("GPT2LMHeadModel is not supported", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_hyperparameter_is_an_error()
    {
        WriteTiny();
        EditConfig(c => c.Remove("hidden_size"));
        Assert.Contains("hidden_size", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_hyperparameter_of_the_wrong_type_is_an_error()
    {
        WriteTiny();
        EditConfig(c => c["num_hidden_layers"] = "two");
        Assert.Contains("num_hidden_layers", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_tensor_whose_shape_disagrees_with_the_config_is_an_error()
    {
        WriteTiny();
        EditConfig(c => c["intermediate_size"] = 48);
        Assert.Contains("mlp", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_tensor_is_an_error()
    {
        WriteTiny(Tiny with { Layers = 2 });
        EditConfig(c => c["num_hidden_layers"] = 3);
        Assert.Contains("blk.2.attn_norm.weight", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_layer_beyond_the_configured_count_is_an_error()
    {
        WriteTiny();
        EditConfig(c => c["num_hidden_layers"] = 1);
        Assert.Contains("model.layers.1.", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_tensor_that_maps_to_nothing_is_an_error()
    {
        WriteTiny(Tiny with { Shards = 1 });
        var extra = ("model.layers.0.mlp.extra.weight", "F32", new long[] { 2 }, new byte[8]);
        HfCheckpoints.WriteSafetensors(Path.Combine(Model, "model-extra.safetensors"), [extra]);
        Assert.Contains("model.layers.0.mlp.extra.weight", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void An_untied_model_without_lm_head_is_an_error()
    {
        WriteTiny(Tiny with { Tied = true });
        EditConfig(c => c["tie_word_embeddings"] = false);
        Assert.Contains("output.weight", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_shard_is_an_error()
    {
        WriteTiny();
        string shard = Path.Combine(Model, "model-00002-of-00002.safetensors");
        var bytes = File.ReadAllBytes(shard);
        File.WriteAllBytes(shard, bytes[..^10]);
        Assert.Contains("truncated", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_tokenizer_is_an_error()
    {
        WriteTiny(tokenizer: false);
        Assert.Contains("tokenizer.json not found", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_id_beyond_the_vocabulary_size_is_an_error()
    {
        WriteTiny(tokenizer: false);
        TinyTokenizer.Write(Model, 400);
        Assert.Contains("outside the model's vocab_size 300", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void An_unrecognized_pre_tokenizer_is_an_error()
    {
        // A tokenizer of 256 byte tokens: its check-text tokens are in no table, as with convert_hf_to_gguf.py.
        WriteTiny();
        Assert.Contains("pre-tokenizer was not recognized", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_sentencepiece_tokenizer_model_is_an_error()
    {
        WriteTiny();
        File.WriteAllBytes(Path.Combine(Model, "tokenizer.model"), [0]);
        Assert.Contains("SentencePiece", Fails(), StringComparison.Ordinal);
    }

    [Fact]
    public void Llama_q_and_k_rows_are_permuted_from_halves_to_pairs()
    {
        // One head of 8 rows: HF rows (0..3 | 4..7) are the two halves of the rotary pairs; ggml wants 0,4,1,5,2,6,3,7.
        Assert.Equal([0L, 4, 1, 5, 2, 6, 3, 7], Enumerable.Range(0, 8).Select(r => HfConverter.PermutedRow(r, 8, 1)));
        // Two heads of 4 rows each.
        Assert.Equal([0L, 2, 1, 3, 4, 6, 5, 7], Enumerable.Range(0, 8).Select(r => HfConverter.PermutedRow(r, 8, 2)));
    }
}

/// <summary>A minimal byte-level BPE tokenizer.json: the 256 byte tokens of GPT-2's byte map and one merge.</summary>
public static class TinyTokenizer
{
    public static void Write(string folder, int extraTokenId)
    {
        var vocab = new JsonObject();
        int id = 0;
        foreach (var c in ByteChars()) vocab[c.ToString()] = id++;
        vocab["\u0120t"] = id++;
        var tok = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = extraTokenId, ["content"] = "<|endoftext|>", ["special"] = true, ["normalized"] = false }),
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray("\u0120 t") },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), tok.ToJsonString());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), "{\"eos_token\": \"<|endoftext|>\", \"add_bos_token\": false}");
    }

    /// <summary>GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for U+0100 onwards.</summary>
    private static IEnumerable<char> ByteChars()
    {
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            yield return printable ? (char)b : (char)(256 + n++);
        }
    }
}
