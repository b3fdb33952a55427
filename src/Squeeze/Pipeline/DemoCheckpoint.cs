using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Squeeze.IO;
using Squeeze.Numerics;

namespace Squeeze.Pipeline;

/// <summary>
/// The material of <c>squeeze demo</c>: a small Qwen3 checkpoint in Hugging Face layout with <b>random weights</b>
/// (config.json, model.safetensors in BF16, tokenizer.json, tokenizer_config.json, a model card), and the calibration
/// and evaluation texts shipped with Squeeze. The tokenizer is a byte-level BPE trained here on the shipped texts, so
/// the demo needs no download. Everything is deterministic: the same seed writes the same bytes.
/// </summary>
public static class DemoCheckpoint
{
    /// <summary>Shapes of the demo model: k-quant friendly (rows of 256), small enough to run every step in seconds.</summary>
    public sealed record Shape(int Hidden = 256, int Layers = 4, int Heads = 4, int KvHeads = 2, int HeadDim = 64,
        int FeedForward = 768, int VocabSize = 640, bool TiedEmbeddings = false);

    /// <summary>The pre-tokenizer the demo tokenizer uses (Qwen2's regex), named as llama.cpp names it.</summary>
    public const string PreTokenizer = "qwen2";

    /// <summary>Special tokens appended after the learned vocabulary, as Qwen's tokenizers have them.</summary>
    public static readonly string[] SpecialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

    // Qwen2's pre-tokenizer split (tokenizer.json of the Qwen2/Qwen3 family).
    private const string SplitRegex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The shipped calibration text (for the importance matrix).</summary>
    public static string CalibrationText => ReadResource("calibration.txt");

    /// <summary>The shipped evaluation text (for perplexity and KL divergence; never seen by the calibration).</summary>
    public static string EvaluationText => ReadResource("evaluation.txt");

    /// <summary>Writes the checkpoint folder (created if needed) and returns its path.</summary>
    public static string Write(string folder, Shape? shape = null, int seed = 1234)
    {
        shape ??= new Shape();
        Directory.CreateDirectory(folder);
        var (vocab, merges) = TrainTokenizer(CalibrationText + "\n" + EvaluationText, shape.VocabSize - SpecialTokens.Length);
        WriteJson(Path.Combine(folder, "tokenizer.json"), TokenizerJson(vocab, merges));
        WriteJson(Path.Combine(folder, "tokenizer_config.json"), TokenizerConfig(vocab.Count));
        WriteJson(Path.Combine(folder, "config.json"), Config(shape, vocab.Count));
        WriteSafetensors(Path.Combine(folder, "model.safetensors"), Tensors(shape, seed));
        var card = "---\nlicense: apache-2.0\nbase_model: none\n---\n# squeeze-demo\n\nA Qwen3-shaped model with **random weights**, "
            + "written by `squeeze demo` to show the whole quantization process offline. Its outputs are meaningless.\n";
        AtomicFile.Write(Path.Combine(folder, "README.md"), s => s.Write(Encoding.UTF8.GetBytes(card)));
        return folder;
    }

    private static string ReadResource(string name)
    {
        var assembly = typeof(DemoCheckpoint).Assembly;
        using var stream = assembly.GetManifestResourceStream($"Squeeze.Pipeline.DemoData.{name}")
            ?? throw new InvalidOperationException($"the demo resource {name} is missing from {assembly.GetName().Name}");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    // ---- tokenizer ----

    /// <summary>
    /// GPT-2's byte-to-character map of byte-level BPE: printable bytes stand for themselves, the rest are shifted
    /// to code points from 256 up, so every byte sequence is a string of visible characters.
    /// </summary>
    internal static char[] ByteToUnicode()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    /// <summary>
    /// Learns byte-level BPE merges from <paramref name="text"/> until the vocabulary has <paramref name="size"/> tokens:
    /// the most frequent adjacent pair inside pre-tokenized words is merged first (ties: the ordinally smallest pair).
    /// Returns the tokens in id order (the 256 byte characters first) and the merges in rank order.
    /// </summary>
    internal static (List<string> Vocab, List<(string A, string B)> Merges) TrainTokenizer(string text, int size)
    {
        var map = ByteToUnicode();
        var vocab = Enumerable.Range(0, 256).Select(b => map[b].ToString()).ToList();
        var words = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (Match m in Regex.Matches(text, SplitRegex))
        {
            var word = string.Concat(Encoding.UTF8.GetBytes(m.Value).Select(b => map[b]));
            words[word] = words.GetValueOrDefault(word) + 1;
        }
        var pieces = words.Keys.Select(w => w.Select(c => c.ToString()).ToList()).ToList();
        var counts = words.Values.ToArray();
        var merges = new List<(string, string)>();
        while (vocab.Count < size)
        {
            var pairs = new Dictionary<(string, string), int>();
            for (int w = 0; w < pieces.Count; w++)
                for (int i = 0; i + 1 < pieces[w].Count; i++)
                {
                    var pair = (pieces[w][i], pieces[w][i + 1]);
                    pairs[pair] = pairs.GetValueOrDefault(pair) + counts[w];
                }
            if (pairs.Count == 0) break;
            var best = pairs.OrderByDescending(p => p.Value)
                .ThenBy(p => p.Key.Item1, StringComparer.Ordinal).ThenBy(p => p.Key.Item2, StringComparer.Ordinal).First().Key;
            merges.Add(best);
            vocab.Add(best.Item1 + best.Item2);
            foreach (var piece in pieces)
                for (int i = 0; i + 1 < piece.Count; i++)
                    if (piece[i] == best.Item1 && piece[i + 1] == best.Item2)
                    {
                        piece[i] = best.Item1 + best.Item2;
                        piece.RemoveAt(i + 1);
                    }
        }
        return (vocab, merges);
    }

    private static JsonObject TokenizerJson(List<string> vocab, List<(string A, string B)> merges)
    {
        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false };
        var vocabJson = new JsonObject();
        for (int i = 0; i < vocab.Count; i++) vocabJson[vocab[i]] = i;
        var added = new JsonArray();
        for (int i = 0; i < SpecialTokens.Length; i++)
            added.Add(new JsonObject
            {
                ["id"] = vocab.Count + i, ["content"] = SpecialTokens[i], ["single_word"] = false, ["lstrip"] = false,
                ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject
                    {
                        ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = SplitRegex },
                        ["behavior"] = "Isolated", ["invert"] = false,
                    },
                    byteLevel.DeepClone()),
            },
            ["post_processor"] = byteLevel.DeepClone(),
            ["decoder"] = byteLevel.DeepClone(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "", ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocabJson,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)new JsonArray(m.A, m.B)).ToArray()),
            },
        };
    }

    private static JsonObject TokenizerConfig(int learned)
    {
        var decoder = new JsonObject();
        for (int i = 0; i < SpecialTokens.Length; i++)
            decoder[(learned + i).ToString(CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["content"] = SpecialTokens[i], ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false,
                ["single_word"] = false, ["special"] = true,
            };
        return new JsonObject
        {
            ["add_bos_token"] = false,
            ["add_prefix_space"] = false,
            ["added_tokens_decoder"] = decoder,
            ["bos_token"] = null,
            ["eos_token"] = "<|im_end|>",
            ["pad_token"] = "<|endoftext|>",
            ["unk_token"] = null,
            ["model_max_length"] = 4096,
            ["tokenizer_class"] = "Qwen2Tokenizer",
            ["chat_template"] = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
        };
    }

    private static JsonObject Config(Shape s, int learned) => new()
    {
        ["architectures"] = new JsonArray("Qwen3ForCausalLM"),
        ["model_type"] = "qwen3",
        ["attention_bias"] = false,
        ["bos_token_id"] = learned,
        ["eos_token_id"] = learned + 2,
        ["head_dim"] = s.HeadDim,
        ["hidden_act"] = "silu",
        ["hidden_size"] = s.Hidden,
        ["intermediate_size"] = s.FeedForward,
        ["max_position_embeddings"] = 4096,
        ["num_attention_heads"] = s.Heads,
        ["num_hidden_layers"] = s.Layers,
        ["num_key_value_heads"] = s.KvHeads,
        ["rms_norm_eps"] = 1e-6,
        ["rope_theta"] = 1000000.0,
        ["rope_scaling"] = null,
        ["tie_word_embeddings"] = s.TiedEmbeddings,
        ["torch_dtype"] = "bfloat16",
        ["vocab_size"] = s.VocabSize,
    };

    // ---- weights ----

    private sealed record RandomTensor(string Name, long[] Shape, float Scale, float Offset);

    /// <summary>The Qwen3 tensors in Hugging Face naming, each with its random distribution (uniform, scaled by fan-in).</summary>
    private static IEnumerable<(RandomTensor Tensor, Random Random)> Tensors(Shape s, int seed)
    {
        var list = new List<RandomTensor>();
        float Fan(int n) => 1f / MathF.Sqrt(n);
        list.Add(new("model.embed_tokens.weight", [s.VocabSize, s.Hidden], 1f, 0));
        for (int l = 0; l < s.Layers; l++)
        {
            var p = $"model.layers.{l}.";
            list.Add(new(p + "input_layernorm.weight", [s.Hidden], 0.1f, 1));
            list.Add(new(p + "self_attn.q_proj.weight", [s.Heads * s.HeadDim, s.Hidden], Fan(s.Hidden), 0));
            list.Add(new(p + "self_attn.k_proj.weight", [s.KvHeads * s.HeadDim, s.Hidden], Fan(s.Hidden), 0));
            list.Add(new(p + "self_attn.v_proj.weight", [s.KvHeads * s.HeadDim, s.Hidden], Fan(s.Hidden), 0));
            list.Add(new(p + "self_attn.o_proj.weight", [s.Hidden, s.Heads * s.HeadDim], Fan(s.Heads * s.HeadDim), 0));
            list.Add(new(p + "self_attn.q_norm.weight", [s.HeadDim], 0.1f, 1));
            list.Add(new(p + "self_attn.k_norm.weight", [s.HeadDim], 0.1f, 1));
            list.Add(new(p + "post_attention_layernorm.weight", [s.Hidden], 0.1f, 1));
            list.Add(new(p + "mlp.gate_proj.weight", [s.FeedForward, s.Hidden], Fan(s.Hidden), 0));
            list.Add(new(p + "mlp.up_proj.weight", [s.FeedForward, s.Hidden], Fan(s.Hidden), 0));
            list.Add(new(p + "mlp.down_proj.weight", [s.Hidden, s.FeedForward], Fan(s.FeedForward), 0));
        }
        list.Add(new("model.norm.weight", [s.Hidden], 0.1f, 1));
        if (!s.TiedEmbeddings) list.Add(new("lm_head.weight", [s.VocabSize, s.Hidden], Fan(s.Hidden), 0));
        // One generator per tensor, seeded by position, so a tensor's values do not depend on the order they are written.
        return list.Select((t, i) => (t, new Random(seed * 7919 + i)));
    }

    /// <summary>Writes a safetensors file: u64 header length, the JSON header, then the BF16 data of each tensor.</summary>
    private static void WriteSafetensors(string path, IEnumerable<(RandomTensor Tensor, Random Random)> tensors)
    {
        var items = tensors.ToList();
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var (t, _) in items)
        {
            long bytes = t.Shape.Aggregate(1L, (a, b) => a * b) * 2;
            header[t.Name] = new JsonObject
            {
                ["dtype"] = "BF16",
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (headerBytes.Length + 7) / 8 * 8; // data starts 8-aligned, padded with spaces as safetensors does
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
            stream.Write(length);
            stream.Write(headerBytes);
            for (int i = headerBytes.Length; i < padded; i++) stream.WriteByte((byte)' ');
            foreach (var (t, random) in items)
            {
                long n = t.Shape.Aggregate(1L, (a, b) => a * b);
                var buffer = new byte[n * 2];
                for (long i = 0; i < n; i++)
                {
                    float value = t.Offset + t.Scale * (float)(random.NextDouble() * 2 - 1);
                    BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan((int)(i * 2), 2), Bf16.FromFloat(value));
                }
                stream.Write(buffer);
            }
        });
    }

    private static void WriteJson(string path, JsonNode node)
    {
        var bytes = Encoding.UTF8.GetBytes(node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}
