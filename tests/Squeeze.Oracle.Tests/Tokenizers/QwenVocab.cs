using System.IO.Compression;
using System.Text.Json;
using Squeeze.Gguf;
using Squeeze.Tests;

namespace Squeeze.Oracle.Tests.Tokenizers;

/// <summary>
/// A vocabulary-only Qwen GGUF built from Qwen3's <c>tokenizer.json</c> and <c>tokenizer_config.json</c> with the keys
/// llama.cpp's <c>convert_hf_to_gguf.py</c> writes for Qwen2/Qwen3 (<c>_set_vocab_gpt2</c> and <c>SpecialVocab</c>):
/// tokens padded to the model's vocab_size with <c>[PADn]</c> (unused), added tokens as control (special, or looking
/// special like <c>&lt;|...|&gt;</c>) or user-defined, merges, pre = qwen2, eos/pad from the tokenizer config, bos from
/// config.json, add_bos false.
/// </summary>
internal static class QwenVocab
{
    private const int VocabSize = 151936; // Qwen3 config.json vocab_size
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<string>> Built = new();

    /// <summary>The vocabulary as convert_hf_to_gguf.py writes it (pre = qwen2).</summary>
    public static string Path => WithPre("qwen2");

    /// <summary>The same tokens and merges under another <c>tokenizer.ggml.pre</c>: a large byte-level vocabulary
    /// on which every pre-tokenizer can be compared with llama.cpp's.</summary>
    public static string WithPre(string pre) => Built.GetOrAdd(pre, p => new Lazy<string>(() => Build(p))).Value;

    private static string Build(string pre)
    {
        string folder = TestData.Require("tokenizers/qwen3");
        using var json = JsonDocument.Parse(new GZipStream(File.OpenRead(System.IO.Path.Combine(folder, "tokenizer.json.gz")), CompressionMode.Decompress));
        using var config = JsonDocument.Parse(File.ReadAllBytes(System.IO.Path.Combine(folder, "tokenizer_config.json")));
        var model = json.RootElement.GetProperty("model");

        var tokens = new string?[VocabSize];
        foreach (var kv in model.GetProperty("vocab").EnumerateObject()) tokens[kv.Value.GetInt32()] = kv.Name;
        var types = new int[VocabSize];
        Array.Fill(types, 1); // NORMAL
        var addedIds = new Dictionary<string, int>();
        foreach (var added in json.RootElement.GetProperty("added_tokens").EnumerateArray())
        {
            int id = added.GetProperty("id").GetInt32();
            string content = added.GetProperty("content").GetString()!;
            tokens[id] = content;
            addedIds.TryAdd(content, id);
            bool special = added.GetProperty("special").GetBoolean();
            bool looksSpecial = (content.StartsWith("<|", StringComparison.Ordinal) && content.EndsWith("|>", StringComparison.Ordinal))
                || (content.StartsWith("<｜", StringComparison.Ordinal) && content.EndsWith("｜>", StringComparison.Ordinal));
            types[id] = special || looksSpecial ? 3 : 4; // CONTROL : USER_DEFINED
        }
        for (int i = 0; i < VocabSize; i++)
        {
            if (tokens[i] is not null) continue;
            tokens[i] = $"[PAD{i}]";
            types[i] = 5; // UNUSED
        }
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.String ? m.GetString()!
                : string.Join(' ', m.EnumerateArray().Select(p => p.GetString()!.Replace(" ", "\u0120", StringComparison.Ordinal))))
            .ToArray();

        int Added(string key) => addedIds[config.RootElement.GetProperty(key).GetString()!];

        var w = new GgufWriter();
        w.Set(GgufKeys.General.Architecture, GgufValue.String("qwen3"));
        w.Set(GgufKeys.General.Name, GgufValue.String("Qwen3 vocab"));
        w.Set(GgufKeys.Arch.ContextLength("qwen3"), GgufValue.UInt32(40960));
        w.Set(GgufKeys.Arch.EmbeddingLength("qwen3"), GgufValue.UInt32(2560));
        w.Set(GgufKeys.Arch.BlockCount("qwen3"), GgufValue.UInt32(36));
        w.Set(GgufKeys.Arch.FeedForwardLength("qwen3"), GgufValue.UInt32(9728));
        w.Set(GgufKeys.Arch.AttentionHeadCount("qwen3"), GgufValue.UInt32(32));
        w.Set(GgufKeys.Arch.AttentionHeadCountKv("qwen3"), GgufValue.UInt32(8));
        w.Set(GgufKeys.Arch.RopeFreqBase("qwen3"), GgufValue.Float32(5000000f));
        w.Set(GgufKeys.Arch.AttentionLayerNormRmsEpsilon("qwen3"), GgufValue.Float32(1e-6f));
        w.Set(GgufKeys.Arch.AttentionKeyLength("qwen3"), GgufValue.UInt32(128));
        w.Set(GgufKeys.Arch.AttentionValueLength("qwen3"), GgufValue.UInt32(128));
        w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("gpt2"));
        w.Set(GgufKeys.Tokenizer.Pre, GgufValue.String(pre));
        w.Set(GgufKeys.Tokenizer.Tokens, GgufValue.Strings(tokens!));
        w.Set(GgufKeys.Tokenizer.TokenType, GgufValue.Array(GgufArray.Of(types)));
        w.Set(GgufKeys.Tokenizer.Merges, GgufValue.Strings(merges));
        w.Set(GgufKeys.Tokenizer.EosId, GgufValue.UInt32((uint)Added("eos_token")));
        w.Set(GgufKeys.Tokenizer.PaddingId, GgufValue.UInt32((uint)Added("pad_token")));
        w.Set(GgufKeys.Tokenizer.BosId, GgufValue.UInt32(151643)); // config.json bos_token_id
        w.Set(GgufKeys.Tokenizer.AddBos, GgufValue.Bool(config.RootElement.GetProperty("add_bos_token").GetBoolean()));
        w.Set(GgufKeys.Tokenizer.ChatTemplate, GgufValue.String(config.RootElement.GetProperty("chat_template").GetString()!));

        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"squeeze-qwen-vocab-{pre}-{Environment.ProcessId}.gguf");
        w.WriteTo(path);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => File.Delete(path);
        return path;
    }
}
