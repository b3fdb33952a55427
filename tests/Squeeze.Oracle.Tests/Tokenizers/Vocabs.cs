using System.Collections.Concurrent;
using System.Text;
using Squeeze.Gguf;
using Squeeze.Tests;
using Squeeze.Tokenizers;

namespace Squeeze.Oracle.Tests.Tokenizers;

/// <summary>The vocabularies under test, each loaded once by Squeeze and by llama.cpp.</summary>
internal static class Vocabs
{
    public const string Folder = "tokenizers/llamacpp-vocab";

    /// <summary>llama.cpp's vocabulary GGUFs in the data folder, plus "qwen2" (built from Qwen3's tokenizer.json).</summary>
    public static readonly string[] All =
    [
        "llama-spm", "phi-3", "baichuan", "bert-bge", "deepseek-coder", "deepseek-llm", "falcon", "gpt-2", "gpt-neox",
        "mpt", "refact", "starcoder", "qwen2",
    ];

    /// <summary>Qwen's tokens and merges under each pre-tokenizer name ("qwen+NAME"), for the pre-tokenizers whose
    /// own vocabularies are not in the data folder.</summary>
    public static readonly string[] PreTokenizerVariants =
    [
        "qwen+llama-bpe", "qwen+command-r", "qwen+roberta-bpe", "qwen+default", "qwen+falcon", "qwen+deepseek-llm",
        "qwen+deepseek-coder", "qwen+starcoder", "qwen+refact", "qwen+gpt-2", "qwen+mpt", "qwen+dbrx", "qwen+chatglm-bpe",
    ];

    /// <summary>Those with llama.cpp's .inp/.out test cases.</summary>
    public static readonly string[] WithCases =
        ["llama-spm", "phi-3", "bert-bge", "deepseek-coder", "deepseek-llm", "falcon", "gpt-2", "mpt", "refact", "starcoder", "qwen2"];

    private static readonly ConcurrentDictionary<string, Lazy<(Tokenizer Ours, OracleVocab Theirs)>> Loaded = new();

    /// <summary>The GGUF path of a vocabulary (skips the test when the data is absent).</summary>
    public static string Path(string name) =>
        name == "qwen2" ? QwenVocab.Path
        : name.StartsWith("qwen+", StringComparison.Ordinal) ? QwenVocab.WithPre(name["qwen+".Length..])
        : TestData.Require($"{Folder}/ggml-vocab-{name}.gguf");

    public static (Tokenizer Ours, OracleVocab Theirs) Get(string name)
    {
        string path = Path(name);
        return Loaded.GetOrAdd(name, _ => new Lazy<(Tokenizer, OracleVocab)>(() => Load(path))).Value;
    }

    /// <summary>A vocabulary for one test: the shared instance, or for a pre-tokenizer variant (used by few tests,
    /// large in memory) a fresh one that is freed after the test.</summary>
    public static Lease Use(string name)
    {
        if (!name.StartsWith("qwen+", StringComparison.Ordinal)) return new Lease(Get(name), owned: false);
        return new Lease(Load(Path(name)), owned: true);
    }

    private static (Tokenizer, OracleVocab) Load(string path)
    {
        using var file = GgufFile.Open(path);
        return (Tokenizer.FromGguf(file), OracleVocab.Load(path));
    }

    public sealed class Lease((Tokenizer Ours, OracleVocab Theirs) pair, bool owned) : IDisposable
    {
        public Tokenizer Ours => pair.Ours;
        public OracleVocab Theirs => pair.Theirs;

        public void Deconstruct(out Tokenizer ours, out OracleVocab theirs) => (ours, theirs) = pair;

        public void Dispose()
        {
            if (owned) pair.Theirs.Dispose();
        }
    }

    /// <summary>llama.cpp's test cases: the .inp strings (separated by "\n__ggml_vocab_test__\n") and the .out ids.</summary>
    public static List<(byte[] Text, int[] Ids)> Cases(string name)
    {
        var inp = File.ReadAllBytes(TestData.Require($"{Folder}/ggml-vocab-{name}.gguf.inp"));
        var outLines = File.ReadAllLines(TestData.Require($"{Folder}/ggml-vocab-{name}.gguf.out"));
        var sep = "\n__ggml_vocab_test__\n"u8.ToArray();
        var texts = new List<byte[]>();
        int pos = 0;
        while (pos < inp.Length)
        {
            int next = inp.AsSpan(pos).IndexOf(sep);
            if (next < 0) { texts.Add(inp[pos..]); break; }
            texts.Add(inp[pos..(pos + next)]);
            pos += next + sep.Length;
        }
        if (texts.Count != outLines.Length) throw new InvalidDataException($"{name}: {texts.Count} inputs but {outLines.Length} outputs");
        return texts.Select((t, i) => (t, outLines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())).ToList();
    }

    public static string Show(byte[] text) => Encoding.UTF8.GetString(text).Replace("\n", "\\n").Replace("\r", "\\r").Replace("\t", "\\t");
}
