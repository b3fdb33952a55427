using System.Text;
using Squeeze.Gguf;

namespace Squeeze.Tokenizers;

public sealed partial class Tokenizer
{
    /// <summary>The null token id (llama.cpp's <c>LLAMA_TOKEN_NULL</c>).</summary>
    public const int Null = -1;

    // Token texts as "byte strings": one char per byte (Latin-1), so that spans of a text are spans of its bytes
    // and dictionary lookups need no decoding. GGUF token texts are UTF-8; llama.cpp matches them byte for byte.
    private readonly string[] _texts;
    private readonly float[] _scores;
    private readonly TokenAttributes[] _attrs;
    private readonly Dictionary<string, int> _ids;
    private readonly TokenTable _table;
    private readonly int[] _specialTokens;
    private readonly byte[][] _pieces;
    private readonly HashSet<int> _eog = [];
    private readonly PreTokenizer? _preTokenizer;
    private readonly BpeMerges? _merges;

    private Tokenizer(GgufFile file)
    {
        _tokenBytes = new(() => Array.ConvertAll(_texts!, ByteString.ToBytes));
        _specialTrie = new(() => new SpecialTrie(this));
        Model = Find(file, GgufKeys.Tokenizer.Model)?.AsString()
            ?? throw new InvalidInputException($"{GgufKeys.Tokenizer.Model} is missing: the file has no tokenizer");
        Pre = Find(file, GgufKeys.Tokenizer.Pre)?.AsString() ?? "";
        int bos, eos, unk, sep, pad, mask;
        switch (Model)
        {
            case "llama":
                Type = VocabType.Spm;
                (bos, eos, unk, sep, pad, mask) = (1, 2, 0, Null, Null, Null);
                break;
            case "bert":
                Type = VocabType.Wpm;
                (bos, eos, unk, sep, pad, mask) = (101, Null, 100, 102, 0, 103);
                AddSep = true;
                break;
            case "gpt2":
                Type = VocabType.Bpe;
                (bos, eos, unk, sep, pad, mask) = (11, 11, Null, Null, Null, Null);
                break;
            default:
                throw new InvalidInputException($"{GgufKeys.Tokenizer.Model} '{Model}' is not supported (Squeeze reads 'llama', 'gpt2' and 'bert' vocabularies)");
        }

        bool escapeWhitespaces = true;
        switch (Type)
        {
            case VocabType.Bpe:
                AddSpacePrefix = false;
                escapeWhitespaces = false;
                CleanSpaces = true;
                var rule = PreTokenizerNames.Find(Pre)
                    ?? throw new InvalidInputException($"{GgufKeys.Tokenizer.Pre} '{Pre}' is not a pre-tokenizer Squeeze implements");
                PreTokenizerKind = rule.Kind;
                if (rule.CleanSpaces is bool clean) CleanSpaces = clean;
                IgnoreMerges = rule.IgnoreMerges;
                if (rule.AddBos) AddBos = true;
                if (rule.AddSep) AddSep = true;
                if (rule.NoBos) bos = Null;
                break;
            case VocabType.Spm:
                AddSpacePrefix = true;
                CleanSpaces = false;
                AddBos = true;
                AddEos = false;
                break;
            case VocabType.Wpm:
                AddSpacePrefix = false;
                CleanSpaces = true;
                AddBos = true;
                AddEos = false;
                AddSep = true;
                break;
        }
        EscapeWhitespaces = escapeWhitespaces;
        AddSpacePrefix = Find(file, GgufKeys.Tokenizer.AddPrefix)?.AsBool() ?? AddSpacePrefix;
        RemoveExtraWhitespaces = Find(file, GgufKeys.Tokenizer.RemoveExtraWhitespaces)?.AsBool() ?? false;

        var tokens = Typed<string>(file, GgufKeys.Tokenizer.Tokens)
            ?? throw new InvalidInputException($"{GgufKeys.Tokenizer.Tokens} is missing: the file has no vocabulary");
        int n = tokens.Length;
        var scores = Typed<float>(file, GgufKeys.Tokenizer.Scores);
        if (scores is not null && scores.Length < n)
            throw new InvalidInputException($"{GgufKeys.Tokenizer.Scores} has {scores.Length} entries for {n} tokens");
        var types = Typed<int>(file, GgufKeys.Tokenizer.TokenType);
        if (types is not null && types.Length < n)
            throw new InvalidInputException($"{GgufKeys.Tokenizer.TokenType} has {types.Length} entries for {n} tokens");

        _texts = new string[n];
        _scores = new float[n];
        _attrs = new TokenAttributes[n];
        _ids = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            string word = tokens[i].Length == 0 ? $"[EMPTY_{i}]" : tokens[i];
            string text = ByteString.FromUtf16(word);
            if (!_ids.TryAdd(text, i))
                throw new InvalidInputException($"{GgufKeys.Tokenizer.Tokens}[{i}] repeats token {_ids[text]} ('{word}')");
            MaxTokenLength = Math.Max(MaxTokenLength, text.Length);
            _texts[i] = text;
            _scores[i] = scores is null ? 0f : scores[i];
            _attrs[i] = types is null ? TokenAttributes.Normal : (GgufTokenType)types[i] switch
            {
                GgufTokenType.Unknown => TokenAttributes.Unknown,
                GgufTokenType.Unused => TokenAttributes.Unused,
                GgufTokenType.Normal => TokenAttributes.Normal,
                GgufTokenType.Control => TokenAttributes.Control,
                GgufTokenType.UserDefined => TokenAttributes.UserDefined,
                GgufTokenType.Byte => TokenAttributes.Byte,
                _ => TokenAttributes.Undefined,
            };
        }
        _table = new TokenTable(_texts);

        if (Type == VocabType.Bpe)
        {
            var merges = Typed<string>(file, GgufKeys.Tokenizer.Merges)
                ?? throw new InvalidInputException($"{GgufKeys.Tokenizer.Merges} is missing: a gpt2 vocabulary needs its merges");
            _merges = new BpeMerges(this, merges);
            _preTokenizer = PreTokenizer.For(PreTokenizerKind);
        }

        // Special token ids: a key that names a token outside the vocabulary is ignored (llama.cpp warns).
        int eot = Null, eom = Null, fimPre = Null, fimSuf = Null, fimMid = Null, fimPad = Null, fimRep = Null, fimSep = Null;
        void Read(string key, ref int id)
        {
            if (Find(file, key) is not { } v) return;
            long value = v.AsInt64();
            if (value >= 0 && value < n) id = (int)value;
        }
        Read(GgufKeys.Tokenizer.BosId, ref bos);
        Read(GgufKeys.Tokenizer.EosId, ref eos);
        Read(GgufKeys.Tokenizer.EotId, ref eot);
        Read(GgufKeys.Tokenizer.EomId, ref eom);
        Read(GgufKeys.Tokenizer.UnknownId, ref unk);
        Read(GgufKeys.Tokenizer.SeparatorId, ref sep);
        Read(GgufKeys.Tokenizer.PaddingId, ref pad);
        Read(GgufKeys.Tokenizer.MaskId, ref mask);
        Read(GgufKeys.Tokenizer.FimPreId, ref fimPre);
        Read(GgufKeys.Tokenizer.FimSufId, ref fimSuf);
        Read(GgufKeys.Tokenizer.FimMidId, ref fimMid);
        Read(GgufKeys.Tokenizer.FimPadId, ref fimPad);
        Read(GgufKeys.Tokenizer.FimRepId, ref fimRep);
        Read(GgufKeys.Tokenizer.FimSepId, ref fimSep);
        Read(GgufKeys.Tokenizer.PrefixId, ref fimPre);
        Read(GgufKeys.Tokenizer.SuffixId, ref fimSuf);
        Read(GgufKeys.Tokenizer.MiddleId, ref fimMid);

        AddBos = Find(file, GgufKeys.Tokenizer.AddBos)?.AsBool() ?? AddBos;
        AddEos = Find(file, GgufKeys.Tokenizer.AddEos)?.AsBool() ?? AddEos;
        AddSep = Find(file, GgufKeys.Tokenizer.AddSep)?.AsBool() ?? AddSep;
        Lowercase = Find(file, GgufKeys.Tokenizer.NormalizerLowercase)?.AsBool() ?? true; // llama.cpp's default
        StripAccents = Find(file, GgufKeys.Tokenizer.NormalizerStripAccents)?.AsBool() ?? Lowercase;

        // llama.cpp finds end-of-turn and fill-in-the-middle tokens by their text when the file does not name
        // them, and makes each one it picks a control token. It walks its token-to-id hash map, so when a
        // vocabulary holds two candidates for one role (Qwen: <|endoftext|> and <|im_end|>) the first in that
        // map's iteration order wins; StdUnorderedMapOrder reproduces the order.
        foreach (int id in StdUnorderedMapOrder.Order(_tokenBytes.Value))
        {
            string t = ByteString.ToUtf16(_texts[id]);
            void Pick(ref int role, string[] candidates)
            {
                if (role != Null || Array.IndexOf(candidates, t) < 0) return;
                role = id;
                _attrs[id] |= TokenAttributes.Control;
            }
            Pick(ref eot, SpecialTexts.Eot);
            Pick(ref eom, SpecialTexts.Eom);
            Pick(ref fimPre, SpecialTexts.FimPre);
            Pick(ref fimSuf, SpecialTexts.FimSuf);
            Pick(ref fimMid, SpecialTexts.FimMid);
            Pick(ref fimPad, SpecialTexts.FimPad);
            Pick(ref fimRep, SpecialTexts.FimRep);
            Pick(ref fimSep, SpecialTexts.FimSep);
        }

        // Control tokens whose text says "unused" are unused.
        for (int id = 0; id < n; id++)
            if ((_attrs[id] & TokenAttributes.Control) != 0 && _texts[id].Contains("unused", StringComparison.Ordinal))
                _attrs[id] |= TokenAttributes.Unused;

        foreach (int id in new[] { fimPad, fimRep, fimSep }) if (id != Null) _eog.Add(id);
        for (int id = 0; id < n; id++)
        {
            if (Array.IndexOf(SpecialTexts.Eog, ByteString.ToUtf16(_texts[id])) < 0) continue;
            _eog.Add(id);
            _attrs[id] |= TokenAttributes.Control;
        }
        // gpt-oss: these are always rendered.
        foreach (var t in SpecialTexts.AlwaysRendered)
            if (_ids.TryGetValue(ByteString.FromUtf16(t), out int id)) _attrs[id] = TokenAttributes.UserDefined;
        foreach (int id in new[] { eos, eot, eom }) if (id != Null) _eog.Add(id);
        {
            // o200k_harmony and solar-open: "<|end|>" ends a message, not the generation.
            bool hasReturn = false, hasCall = false, hasFlush = false, hasEnd = false;
            int endId = Null;
            foreach (int id in _eog)
            {
                if (id < 0 || id >= n) continue;
                switch (ByteString.ToUtf16(_texts[id]))
                {
                    case "<|return|>": hasReturn = true; break;
                    case "<|call|>" or "<|calls|>": hasCall = true; break;
                    case "<|flush|>": hasFlush = true; break;
                    case "<|end|>": hasEnd = true; endId = id; break;
                }
            }
            if ((hasReturn && hasCall && hasEnd) || (hasCall && hasFlush && hasEnd))
            {
                _eog.Remove(endId);
                _attrs[endId] = TokenAttributes.UserDefined;
            }
            // gemma4 and paddleocr: "</s>" is not an end of generation there.
            bool hasToolResponse = false;
            int sId = Null;
            foreach (int id in _eog)
            {
                if (id < 0 || id >= n) continue;
                var text = ByteString.ToUtf16(_texts[id]);
                if (text == "<|tool_response>") hasToolResponse = true;
                else if (text == "</s>") sId = id;
            }
            if (hasToolResponse && sId != Null)
            {
                _eog.Remove(sId);
                _attrs[sId] = TokenAttributes.Normal;
            }
        }

        (Bos, Eos, Eot, Eom, Unknown, Separator, Padding, Mask) = (bos, eos, eot, eom, unk, sep, pad, mask);
        (FimPrefix, FimSuffix, FimMiddle, FimPad, FimRepo, FimSeparator) = (fimPre, fimSuf, fimMid, fimPad, fimRep, fimSep);

        // The tokens split out of text before tokenizing, longest first (llama.cpp sorts with std::sort, which is
        // not stable; StdSort reproduces libstdc++'s order for tokens of equal length).
        var specials = new List<int>();
        for (int id = 0; id < n; id++)
            if ((_attrs[id] & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0)
                specials.Add(id);
        _specialTokens = specials.ToArray();
        StdSort.Sort(_specialTokens, (a, b) => _texts[a].Length > _texts[b].Length);

        if (Type == VocabType.Spm) _spmPairs = BuildSpmPairs();

        _pieces = new byte[n][];
        for (int id = 0; id < n; id++) _pieces[id] = ComputePiece(id);

        // Per-model attributes llama.cpp sets by name (GGUF does not store them).
        string modelName = AsciiLower(Find(file, GgufKeys.General.Name)?.Value as string ?? "");
        string arch = file.Architecture ?? "";
        if (ContainsAny(Pre, "jina-v2-de", "jina-v2-es", "jina-v2-code") || ContainsAny(arch, "nomic-bert-moe", "jina-bert-v3"))
        {
            if (_ids.TryGetValue("<mask>", out int id)) _attrs[id] |= TokenAttributes.LStrip;
        }
        else if (ContainsAny(modelName, "phi-3", "phi3"))
        {
            foreach (int id in _specialTokens) _attrs[id] |= TokenAttributes.RStrip;
            _attrs[RequireId("</s>")] |= TokenAttributes.RStrip;
            foreach (var t in new[] { "<unk>", "<s>", "<|endoftext|>" }) _attrs[RequireId(t)] &= ~TokenAttributes.RStrip;
        }
        else if (ContainsAny(modelName, "modern-bert"))
        {
            if (_ids.TryGetValue("[MASK]", out int id)) _attrs[id] |= TokenAttributes.LStrip;
        }
    }

    /// <summary>Reads the tokenizer of a GGUF file (the <c>tokenizer.ggml.*</c> metadata).</summary>
    /// <exception cref="InvalidInputException">The metadata is missing, inconsistent, or names a tokenizer Squeeze lacks.</exception>
    public static Tokenizer FromGguf(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return new Tokenizer(file);
    }

    /// <summary>Opens a GGUF file and reads its tokenizer.</summary>
    public static Tokenizer Open(string path)
    {
        using var file = GgufFile.Open(path);
        return FromGguf(file);
    }

    /// <summary>A metadata value, with a wrong type reported as the file's fault.</summary>
    private static Meta? Find(GgufFile file, string key) => file.Find(key) is { } v ? new Meta(key, v) : null;

    private static T[]? Typed<T>(GgufFile file, string key)
    {
        var v = file.Find(key);
        if (v is null) return null;
        try
        {
            return v.AsArray().As<T>();
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidInputException($"{key}: {e.Message}", e);
        }
    }

    /// <summary>A metadata value whose typed reads name the key when the type is wrong.</summary>
    private readonly struct Meta(string key, GgufValue value)
    {
        public object Value => value.Value;
        public string AsString() => Read(value.AsString);
        public bool AsBool() => Read(value.AsBool);
        public long AsInt64() => Read(value.AsInt64);

        private T Read<T>(Func<T> read)
        {
            try
            {
                return read();
            }
            catch (InvalidOperationException e)
            {
                throw new InvalidInputException($"{key}: {e.Message}", e);
            }
        }
    }

    private int RequireId(string text) =>
        _ids.TryGetValue(ByteString.FromUtf16(text), out int id) ? id
            : throw new InvalidInputException($"the vocabulary has no token '{text}', which llama.cpp requires for this model");

    private static string AsciiLower(string s) =>
        string.Create(s.Length, s, (span, src) => { for (int i = 0; i < src.Length; i++) span[i] = src[i] is >= 'A' and <= 'Z' ? (char)(src[i] + 32) : src[i]; });

    private static bool ContainsAny(string s, params string[] parts) => parts.Any(p => s.Contains(p, StringComparison.Ordinal));

    /// <summary><c>tokenizer.ggml.model</c>: <c>llama</c>, <c>gpt2</c> or <c>bert</c>.</summary>
    public string Model { get; }
    /// <summary><c>tokenizer.ggml.pre</c> as stored ("" when absent).</summary>
    public string Pre { get; }
    public VocabType Type { get; }
    /// <summary>The pre-tokenizer group of a BPE vocabulary.</summary>
    public PreTokenizerKind PreTokenizerKind { get; }
    public int VocabSize => _texts.Length;
    /// <summary>The longest token text in bytes.</summary>
    public int MaxTokenLength { get; }

    public int Bos { get; }
    public int Eos { get; }
    public int Eot { get; }
    public int Eom { get; }
    public int Unknown { get; }
    public int Separator { get; }
    public int Padding { get; }
    public int Mask { get; }
    public int FimPrefix { get; }
    public int FimSuffix { get; }
    public int FimMiddle { get; }
    public int FimPad { get; }
    public int FimRepo { get; }
    public int FimSeparator { get; }

    /// <summary>Whether <see cref="Encode(string, bool, bool)"/> with <c>addSpecial</c> starts with BOS.</summary>
    public bool AddBos { get; }
    /// <summary>Whether <see cref="Encode(string, bool, bool)"/> with <c>addSpecial</c> ends with EOS.</summary>
    public bool AddEos { get; }
    public bool AddSep { get; }
    /// <summary>SPM: a space is put before text that starts the input or follows a special token.</summary>
    public bool AddSpacePrefix { get; }
    public bool RemoveExtraWhitespaces { get; }
    /// <summary>Spaces are written as U+2581 before tokenizing (SPM) and read back when detokenizing.</summary>
    public bool EscapeWhitespaces { get; }
    /// <summary>BPE: a word that is itself a token is not merged (Llama 3 and kin).</summary>
    public bool IgnoreMerges { get; }
    /// <summary>Detokenizing removes spaces before punctuation (HF <c>clean_up_tokenization_spaces</c>).</summary>
    public bool CleanSpaces { get; }
    /// <summary>WPM: lowercase the text.</summary>
    public bool Lowercase { get; }
    /// <summary>WPM: decompose and drop accents.</summary>
    public bool StripAccents { get; }

    /// <summary>The token's text as UTF-16 (invalid UTF-8 shows as U+FFFD).</summary>
    public string TokenText(int token) => ByteString.ToUtf16(_texts[CheckToken(token)]);

    /// <summary>The token's text bytes as stored in the vocabulary.</summary>
    public byte[] TokenBytes(int token) => ByteString.ToBytes(_texts[CheckToken(token)]);

    public float Score(int token) => _scores[CheckToken(token)];

    public TokenAttributes Attributes(int token) => _attrs[CheckToken(token)];

    /// <summary>Whether generating <paramref name="token"/> ends generation (EOS, EOT, EOM and the tokens llama.cpp
    /// recognises by text).</summary>
    public bool IsEndOfGeneration(int token) => token != Null && _eog.Contains(token);

    /// <summary>The id of the token whose text is exactly <paramref name="text"/>, or <see cref="Null"/>.</summary>
    public int Find(string text) => _ids.TryGetValue(ByteString.FromUtf16(text), out int id) ? id : Null;

    private int CheckToken(int token) =>
        (uint)token < (uint)_texts.Length ? token : throw new ArgumentOutOfRangeException(nameof(token), token, $"not a token id (vocabulary of {_texts.Length})");

    private int TextToToken(ReadOnlySpan<char> byteText) => _table.Find(byteText);
}

/// <summary>Token texts llama.cpp recognises by name (<c>llama_vocab::impl::load</c>).</summary>
internal static class SpecialTexts
{
    public static readonly string[] Eot =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
        "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
    ];
    public static readonly string[] Eom = ["<|eom_id|>"];
    public static readonly string[] FimPre =
        ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"];
    public static readonly string[] FimSuf =
        ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"];
    public static readonly string[] FimMid =
        ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"];
    public static readonly string[] FimPad = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
    public static readonly string[] FimRep = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
    public static readonly string[] FimSep = ["<|file_sep|>"];
    public static readonly string[] Eog =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
    ];
    public static readonly string[] AlwaysRendered = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];
}

/// <summary>The names llama.cpp accepts in <c>tokenizer.ggml.pre</c> for the pre-tokenizers Squeeze implements, with
/// the flags each name sets.</summary>
internal static class PreTokenizerNames
{
    public sealed record Rule(PreTokenizerKind Kind, bool? CleanSpaces = null, bool IgnoreMerges = false, bool AddBos = false,
        bool AddSep = false, bool NoBos = false);

    private static readonly Dictionary<string, Rule> Rules = Build();

    public static Rule? Find(string name) => Rules.GetValueOrDefault(name);

    /// <summary>Every name Squeeze accepts.</summary>
    public static IEnumerable<string> Names => Rules.Keys.Where(k => k.Length > 0);

    private static Dictionary<string, Rule> Build()
    {
        var r = new Dictionary<string, Rule>(StringComparer.Ordinal);
        void Add(Rule rule, params string[] names) { foreach (var n in names) r[n] = rule; }
        Add(new(PreTokenizerKind.Default), "", "default");
        Add(new(PreTokenizerKind.Llama3, IgnoreMerges: true, AddBos: true),
            "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano");
        Add(new(PreTokenizerKind.Llama3), "dbrx", "smaug-bpe");
        Add(new(PreTokenizerKind.Llama3, NoBos: true), "glm4", "chatglm-bpe");
        Add(new(PreTokenizerKind.DeepseekLlm, CleanSpaces: false), "deepseek-llm");
        Add(new(PreTokenizerKind.DeepseekCoder, CleanSpaces: false), "deepseek-coder");
        Add(new(PreTokenizerKind.Falcon), "falcon");
        Add(new(PreTokenizerKind.Gpt2), "mpt", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
            "a.x-4.0", "mellum", "modern-bert", "olmo", "jais", "exaone4");
        Add(new(PreTokenizerKind.Gpt2, AddSep: true), "jina-v1-en", "jina-v2-code", "roberta-bpe");
        Add(new(PreTokenizerKind.Gpt2, CleanSpaces: false), "trillion", "granite-docling");
        Add(new(PreTokenizerKind.Starcoder), "starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2");
        Add(new(PreTokenizerKind.Starcoder, CleanSpaces: false), "command-r", "smollm");
        Add(new(PreTokenizerKind.Qwen2, CleanSpaces: false), "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open");
        Add(new(PreTokenizerKind.Qwen2), "stablelm2", "megrez");
        return r;
    }
}

/// <summary>Byte strings: one char (U+0000 to U+00FF) per byte, so that .NET strings hold raw bytes.</summary>
internal static class ByteString
{
    public static string FromBytes(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);
    public static string FromUtf16(string s) => Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(s));
    public static byte[] ToBytes(string byteString) => Encoding.Latin1.GetBytes(byteString);
    public static string ToUtf16(string byteString) => Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(byteString));
}
