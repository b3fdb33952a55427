using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Squeeze.Gguf;
using Squeeze.Tokenizers;

namespace Squeeze.Conversion;

/// <summary>
/// A byte-level BPE vocabulary from a Hugging Face <c>tokenizer.json</c>, turned into GGUF metadata as
/// convert_hf_to_gguf.py's <c>_set_vocab_gpt2</c> and gguf-py's <c>SpecialVocab</c> do: tokens padded to the model's
/// vocab_size with <c>[PADn]</c>, token types (added tokens are control tokens when special or special-looking,
/// user-defined otherwise), merges, the pre-tokenizer named by the hash of the check text's tokens, special token
/// ids from tokenizer_config.json and config.json, add_bos/add_eos, and the chat template.
/// </summary>
public sealed class HfVocab
{
    // gguf-py's TokenType values.
    private const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;

    private static readonly string[] DefaultSpecialTypes = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"];

    private HfVocab() { }

    /// <summary>Token texts, one per id up to vocab_size.</summary>
    public required string[] Tokens { get; init; }

    /// <summary>Token types (gguf-py's <c>TokenType</c>).</summary>
    public required int[] TokenTypes { get; init; }

    /// <summary>Merges as "left right" (spaces inside a part written as U+0120).</summary>
    public required string[] Merges { get; init; }

    /// <summary>The pre-tokenizer name (<c>tokenizer.ggml.pre</c>).</summary>
    public required string Pre { get; init; }

    /// <summary>The hash of the check text's tokens that chose <see cref="Pre"/>.</summary>
    public required string CheckHash { get; init; }

    /// <summary>Special token ids by type (bos, eos, unk, sep, pad, cls, mask, eot, eom), in the order gguf-py sets them.</summary>
    public required List<KeyValuePair<string, int>> SpecialIds { get; init; }

    /// <summary>add_bos / add_eos / add_sep flags, in the order gguf-py sets them.</summary>
    public required List<KeyValuePair<string, bool>> AddSpecial { get; init; }

    /// <summary>The default chat template, if any.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Named chat templates besides the default one.</summary>
    public List<KeyValuePair<string, string>> NamedChatTemplates { get; init; } = [];

    public bool? NormalizerLowercase { get; init; }
    public bool? NormalizerStripAccents { get; init; }

    /// <summary>Reads the tokenizer files of <paramref name="folder"/> for a model of <paramref name="vocabSize"/> tokens.</summary>
    public static HfVocab Load(string folder, long? vocabSize)
    {
        string path = Path.Combine(folder, "tokenizer.json");
        if (!File.Exists(path)) throw new InvalidInputException($"tokenizer.json not found in {folder} (Squeeze converts byte-level BPE tokenizers from tokenizer.json)");
        var tok = HfConfig.ReadJsonObject(path);
        if (!tok.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new InvalidInputException("tokenizer.json has no \"model\" object");
        string type = Str(model, "type") ?? "BPE";
        if (type != "BPE") throw new InvalidInputException($"tokenizer.json: model type {type} is not supported (Squeeze converts byte-level BPE tokenizers)");
        if (!model.TryGetProperty("vocab", out var vocabEl) || vocabEl.ValueKind != JsonValueKind.Object)
            throw new InvalidInputException("tokenizer.json: model.vocab is missing");

        // tokenizer.vocab in transformers: the model's vocabulary with the added tokens over it.
        var reverse = new Dictionary<int, string>();
        foreach (var p in vocabEl.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                throw new InvalidInputException($"tokenizer.json: model.vocab['{p.Name}'] is not a token id");
            reverse[id] = p.Name;
        }
        var added = new List<(int Id, string Content, bool Special)>();
        var addedByContent = new Dictionary<string, int>(StringComparer.Ordinal);
        if (tok.TryGetProperty("added_tokens", out var addedEl) && addedEl.ValueKind == JsonValueKind.Array)
        {
            foreach (var a in addedEl.EnumerateArray())
            {
                if (a.ValueKind != JsonValueKind.Object || !a.TryGetProperty("id", out var idEl) || !idEl.TryGetInt32(out int id) || id < 0
                    || Str(a, "content") is not { } content)
                    throw new InvalidInputException("tokenizer.json: an added_tokens entry lacks an id or content");
                bool special = a.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True;
                added.Add((id, content, special));
                addedByContent.TryAdd(content, id);
                reverse[id] = content;
            }
        }
        int maxId = reverse.Count == 0 ? -1 : reverse.Keys.Max();
        long n = vocabSize ?? reverse.Count;
        if (maxId >= n)
            throw new InvalidInputException($"tokenizer.json has token id {maxId}, outside the model's vocab_size {n}");

        var addedSpecial = added.GroupBy(a => a.Id).ToDictionary(g => g.Key, g => g.Last());
        var tokens = new string[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            if (!reverse.TryGetValue(i, out var token))
            {
                tokens[i] = $"[PAD{i}]";
                types[i] = Unused;
            }
            else if (addedByContent.ContainsKey(token) && addedSpecial.TryGetValue(i, out var a))
            {
                if (a.Special || LooksSpecial(token)) types[i] = Control;
                else
                {
                    token = token.Replace("\u2581", " ", StringComparison.Ordinal); // pre-normalized user-defined spaces
                    types[i] = UserDefined;
                }
                tokens[i] = token;
            }
            else
            {
                tokens[i] = token;
                types[i] = Normal;
            }
        }

        var merges = ReadMerges(model);
        var (pre, hash) = DetectPre(tok, model, tokens, types, merges);

        // SpecialVocab: merges and normalizer flags came from tokenizer.json; now special tokens and templates.
        var config = File.Exists(Path.Combine(folder, "tokenizer_config.json"))
            ? HfConfig.ReadJsonObject(Path.Combine(folder, "tokenizer_config.json")) : (JsonElement?)null;
        var overrides = new Dictionary<string, string?>(StringComparer.Ordinal);
        string? TcToken(string key)
        {
            if (overrides.TryGetValue(key, out var o)) return o;
            if (config is not { } c || !c.TryGetProperty(key, out var v)) return null;
            return v.ValueKind switch
            {
                JsonValueKind.String => v.GetString(),
                JsonValueKind.Object when v.TryGetProperty("content", out var ct) && ct.ValueKind == JsonValueKind.String => ct.GetString(),
                _ => null,
            };
        }
        var specialTypes = DefaultSpecialTypes.ToList();
        var addSpecial = new List<KeyValuePair<string, bool>>();
        void SetAdd(string typ, bool value)
        {
            int i = addSpecial.FindIndex(kv => kv.Key == typ);
            if (i >= 0) addSpecial[i] = new(typ, value); else addSpecial.Add(new(typ, value));
        }

        string? specialBos = TcToken("bos_token"), specialCls = TcToken("cls_token"), specialEos = TcToken("eos_token"), specialSep = TcToken("sep_token");
        if (string.IsNullOrEmpty(specialBos) && !string.IsNullOrEmpty(specialCls) && config is not null) overrides["bos_token"] = specialBos = specialCls;
        if (string.IsNullOrEmpty(specialEos) && !string.IsNullOrEmpty(specialSep) && config is not null) overrides["eos_token"] = specialEos = specialSep;
        if (tok.TryGetProperty("post_processor", out var post) && post.ValueKind == JsonValueKind.Object)
        {
            var processors = post.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array
                ? list.EnumerateArray().ToList() : [post];
            foreach (var proc in processors)
            {
                string? ptype = Str(proc, "type");
                if (ptype == "RobertaProcessing")
                {
                    SetAdd("bos", true);
                    SetAdd("eos", true);
                    SetAdd("sep", true);
                    if (string.IsNullOrEmpty(specialCls) && config is not null)
                        overrides["cls_token"] = specialCls = proc.TryGetProperty("cls", out var cls) && cls.ValueKind == JsonValueKind.Array ? cls[0].GetString() : specialBos;
                    if (string.IsNullOrEmpty(specialSep) && config is not null)
                        overrides["sep_token"] = specialSep = proc.TryGetProperty("sep", out var sep) && sep.ValueKind == JsonValueKind.Array ? sep[0].GetString() : specialEos;
                    continue;
                }
                if (ptype != "TemplateProcessing") continue;
                var single = proc.TryGetProperty("single", out var s) && s.ValueKind == JsonValueKind.Array ? s.EnumerateArray().ToList() : [];
                if (single.Count <= 1) continue;
                string? first = SpecialTokenId(single[0]);
                if (!string.IsNullOrEmpty(first))
                {
                    if (config is null) specialBos = first;
                    else if (first != specialBos && first != specialCls)
                    {
                        if (string.IsNullOrEmpty(specialBos)) overrides["bos_token"] = specialBos = first;
                        if (string.IsNullOrEmpty(specialCls)) overrides["cls_token"] = specialCls = first;
                    }
                    SetAdd("bos", first == specialBos || first == specialCls);
                }
                string? last = SpecialTokenId(single[^1]);
                if (!string.IsNullOrEmpty(last))
                {
                    if (config is null) specialEos = last;
                    else if (last != specialEos)
                    {
                        // The old EOS becomes the end-of-turn (or end-of-message) token.
                        if (!specialTypes.Contains("eot")) { specialTypes.Add("eot"); overrides["eot_token"] = specialEos; }
                        else if (!specialTypes.Contains("eom")) { specialTypes.Add("eom"); overrides["eom_token"] = specialEos; }
                        overrides["eos_token"] = specialEos = last;
                    }
                    SetAdd("eos", last == specialEos);
                }
            }
        }

        var ids = new List<KeyValuePair<string, int>>();
        void SetId(string typ, JsonElement? value)
        {
            // gguf-py takes only integers (a list of ids, as some configs give for eos, is ignored).
            if (value is not { ValueKind: JsonValueKind.Number } v || !v.TryGetInt64(out long id)) return;
            if (id < 0) throw new InvalidInputException($"invalid value for special token type {typ}: {id}");
            if (ids.Any(kv => kv.Key == typ)) return;
            if (id > int.MaxValue) return;
            AddId(typ, (int)id);
        }
        void AddId(string typ, int id)
        {
            if (!ids.Any(kv => kv.Key == typ)) ids.Add(new(typ, id));
        }

        string? chatTemplate = null;
        var named = new List<KeyValuePair<string, string>>();
        if (config is { } tc)
        {
            ReadChatTemplate(folder, tc, ref chatTemplate, named);
            foreach (var typ in specialTypes)
            {
                if (tc.TryGetProperty($"add_{typ}_token", out var addEntry) && addEntry.ValueKind is JsonValueKind.True or JsonValueKind.False)
                    SetAdd(typ, addEntry.GetBoolean());
                if (TcToken($"{typ}_token") is not { } content) continue;
                var match = added.FirstOrDefault(a => a.Content == content);
                if (match.Content is not null) AddId(typ, match.Id);
            }
        }
        var modelConfigPath = Path.Combine(folder, "config.json");
        if (File.Exists(modelConfigPath))
        {
            var mc = HfConfig.ReadJsonObject(modelConfigPath);
            foreach (var typ in specialTypes)
            {
                JsonElement? v = mc.TryGetProperty($"{typ}_token_id", out var x) && x.ValueKind != JsonValueKind.Null ? x : null;
                if (v is null && mc.TryGetProperty("text_config", out var text) && text.ValueKind == JsonValueKind.Object
                    && text.TryGetProperty($"{typ}_token_id", out var y) && y.ValueKind != JsonValueKind.Null) v = y;
                SetId(typ, v);
            }
        }

        bool? lowercase = null, stripAccents = null;
        if (tok.TryGetProperty("normalizer", out var norm) && norm.ValueKind == JsonValueKind.Object)
            ParseNormalizer(norm, ref lowercase, ref stripAccents);

        return new HfVocab
        {
            Tokens = tokens,
            TokenTypes = types,
            Merges = merges,
            Pre = pre,
            CheckHash = hash,
            SpecialIds = ids,
            AddSpecial = addSpecial,
            ChatTemplate = chatTemplate,
            NamedChatTemplates = named,
            NormalizerLowercase = lowercase,
            NormalizerStripAccents = stripAccents,
        };
    }

    /// <summary>Writes the vocabulary keys in the order convert_hf_to_gguf.py writes them.</summary>
    public void WriteTo(GgufWriter w)
    {
        w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("gpt2"));
        w.Set(GgufKeys.Tokenizer.Pre, GgufValue.String(Pre));
        w.Set(GgufKeys.Tokenizer.Tokens, GgufValue.Strings(Tokens));
        w.Set(GgufKeys.Tokenizer.TokenType, GgufValue.Array(GgufArray.Of(TokenTypes)));
        if (Merges.Length > 0) w.Set(GgufKeys.Tokenizer.Merges, GgufValue.Strings(Merges));
        foreach (var (typ, id) in SpecialIds)
        {
            string? key = typ switch
            {
                "bos" => GgufKeys.Tokenizer.BosId,
                "eos" => GgufKeys.Tokenizer.EosId,
                "unk" => GgufKeys.Tokenizer.UnknownId,
                "sep" => GgufKeys.Tokenizer.SeparatorId,
                "pad" => GgufKeys.Tokenizer.PaddingId,
                "cls" => GgufKeys.Tokenizer.ClsId,
                "mask" => GgufKeys.Tokenizer.MaskId,
                "eot" => GgufKeys.Tokenizer.EotId,
                "eom" => GgufKeys.Tokenizer.EomId,
                _ => null,
            };
            if (key is not null) w.Set(key, GgufValue.UInt32((uint)id));
        }
        foreach (var (typ, value) in AddSpecial)
        {
            string? key = typ switch { "bos" => GgufKeys.Tokenizer.AddBos, "eos" => GgufKeys.Tokenizer.AddEos, "sep" => GgufKeys.Tokenizer.AddSep, _ => null };
            if (key is not null) w.Set(key, GgufValue.Bool(value));
        }
        foreach (var (name, template) in NamedChatTemplates)
            if (template.Length > 0) w.Set(GgufKeys.Tokenizer.ChatTemplateNamed(name), GgufValue.String(template));
        if (NamedChatTemplates.Count > 0)
            w.Set(GgufKeys.Tokenizer.ChatTemplates, GgufValue.Strings(NamedChatTemplates.Select(kv => kv.Key)));
        if (!string.IsNullOrEmpty(ChatTemplate)) w.Set(GgufKeys.Tokenizer.ChatTemplate, GgufValue.String(ChatTemplate));
        if (NormalizerLowercase is bool lower) w.Set(GgufKeys.Tokenizer.NormalizerLowercase, GgufValue.Bool(lower));
        if (NormalizerStripAccents is bool strip) w.Set(GgufKeys.Tokenizer.NormalizerStripAccents, GgufValue.Bool(strip));
    }

    /// <summary>convert_hf_to_gguf.py's <c>does_token_look_special</c>.</summary>
    internal static bool LooksSpecial(string token) =>
        token is "<pad>" or "<mask>" or "<2mass>" or "[@BOS@]"
        || (token.StartsWith("<|", StringComparison.Ordinal) && token.EndsWith("|>", StringComparison.Ordinal))
        || (token.StartsWith("<\uFF5C", StringComparison.Ordinal) && token.EndsWith("\uFF5C>", StringComparison.Ordinal))
        || (token.StartsWith("<unused", StringComparison.Ordinal) && token.EndsWith('>'));

    private static string? Str(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static string? SpecialTokenId(JsonElement piece) =>
        piece.ValueKind == JsonValueKind.Object && piece.TryGetProperty("SpecialToken", out var st) ? Str(st, "id") : null;

    private static string[] ReadMerges(JsonElement model)
    {
        if (!model.TryGetProperty("merges", out var m) || m.ValueKind != JsonValueKind.Array || m.GetArrayLength() == 0)
            throw new InvalidInputException("tokenizer.json: model.merges is missing or empty (a BPE vocabulary needs its merges)");
        var merges = new string[m.GetArrayLength()];
        int i = 0;
        foreach (var e in m.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.String) merges[i++] = e.GetString()!;
            else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2 && e[0].ValueKind == JsonValueKind.String && e[1].ValueKind == JsonValueKind.String)
                // transformers >= 4.45 stores pairs, which may hold spaces; gguf-py writes a space in a part as U+0120.
                merges[i++] = e[0].GetString()!.Replace(" ", "\u0120", StringComparison.Ordinal) + " " + e[1].GetString()!.Replace(" ", "\u0120", StringComparison.Ordinal);
            else throw new InvalidInputException($"tokenizer.json: merge {i} is neither \"a b\" nor [\"a\", \"b\"]");
        }
        return merges;
    }

    private static void ParseNormalizer(JsonElement n, ref bool? lowercase, ref bool? stripAccents)
    {
        switch (Str(n, "type"))
        {
            case "Lowercase": lowercase = true; break;
            case "StripAccents": stripAccents = true; break;
            case "BertNormalizer":
                if (n.TryGetProperty("lowercase", out var l) && l.ValueKind is JsonValueKind.True or JsonValueKind.False) lowercase = l.GetBoolean();
                if (n.TryGetProperty("strip_accents", out var s) && s.ValueKind is JsonValueKind.True or JsonValueKind.False) stripAccents = s.GetBoolean();
                break;
            case "Sequence":
                if (n.TryGetProperty("normalizers", out var list) && list.ValueKind == JsonValueKind.Array)
                    foreach (var inner in list.EnumerateArray()) ParseNormalizer(inner, ref lowercase, ref stripAccents);
                break;
        }
    }

    private static void ReadChatTemplate(string folder, JsonElement tc, ref string? template, List<KeyValuePair<string, string>> named)
    {
        JsonElement? value = tc.TryGetProperty("chat_template", out var ct) ? ct : null;
        if (value is null)
        {
            string jinja = Path.Combine(folder, "chat_template.jinja"), json = Path.Combine(folder, "chat_template.json");
            if (File.Exists(jinja))
            {
                template = File.ReadAllText(jinja);
                var extra = Path.Combine(folder, "additional_chat_templates");
                if (Directory.Exists(extra))
                    foreach (var f in Directory.EnumerateFiles(extra, "*.jinja").Order(StringComparer.Ordinal))
                        named.Add(new(SafeName(Path.GetFileNameWithoutExtension(f)), File.ReadAllText(f)));
                return;
            }
            if (File.Exists(json) && HfConfig.ReadJsonObject(json).TryGetProperty("chat_template", out var j)) value = j;
        }
        if (value is not { } v) return;
        if (v.ValueKind == JsonValueKind.String) { template = v.GetString(); return; }
        if (v.ValueKind != JsonValueKind.Array) return; // gguf-py warns and ignores other types
        foreach (var choice in v.EnumerateArray())
        {
            string name = SafeName(Str(choice, "name") ?? "");
            string? t = Str(choice, "template");
            if (name.Length == 0 || t is null) continue;
            if (name == "default") template = t;
            else named.Add(new(name, t));
        }
    }

    private static string SafeName(string name) =>
        new(name.Select(c => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') ? c : '_').ToArray());

    // ---- pre-tokenizer detection ------------------------------------------------------------------------------

    /// <summary>
    /// convert_hf_to_gguf.py encodes a check text with the Hugging Face tokenizer and names the pre-tokenizer by the
    /// hash of the ids. Squeeze encodes the same text with its own BPE tokenizer (llama.cpp's algorithm) under each
    /// pre-tokenizer it implements, applying the tokenizer.json normalizer and post-processor as transformers would,
    /// and takes the name whose hash is in convert_hf_to_gguf.py's table. The pre-tokenizer that tokenizer.json's
    /// split pattern names is tried first.
    /// </summary>
    private static (string Pre, string Hash) DetectPre(JsonElement tok, JsonElement model, string[] tokens, int[] types, string[] merges)
    {
        bool ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
        string text = Normalize(tok.TryGetProperty("normalizer", out var n) ? n : default, PreTokenizerHashes.CheckText);
        var candidates = PreTokenizerNames.Names
            .Select(name => (Name: name, Rule: PreTokenizerNames.Find(name)!))
            .Where(c => c.Rule.IgnoreMerges == ignoreMerges)
            .GroupBy(c => c.Rule.Kind)
            .Select(g => g.First())
            .OrderBy(c => c.Rule.Kind == SuggestedKind(tok) ? 0 : 1)
            .ThenBy(c => c.Name, StringComparer.Ordinal)
            .ToList();

        var hashes = new List<string>();
        foreach (var (name, _) in candidates)
        {
            Tokenizer tokenizer;
            using (var image = GgufFile.Read(VocabImage(tokens, types, merges, name))) tokenizer = Tokenizer.FromGguf(image);
            var ids = PostProcess(tok, tokenizer.Encode(text, addSpecial: false, parseSpecial: true));
            string list = "[" + string.Join(", ", ids.Select(i => i.ToString(CultureInfo.InvariantCulture))) + "]";
            string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(list)));
            if (PreTokenizerHashes.Names.TryGetValue(hash, out var pre)) return (pre, hash);
            hashes.Add(hash);
        }
        throw new InvalidInputException(
            $"the BPE pre-tokenizer was not recognized: the check text's tokens hash to {hashes.FirstOrDefault()} under the suggested pre-tokenizer, " +
            "which is not in convert_hf_to_gguf.py's table");
    }

    /// <summary>The pre-tokenizer kind whose regex tokenizer.json's Split pre-tokenizer uses, if one is recognised.</summary>
    private static PreTokenizerKind? SuggestedKind(JsonElement tok)
    {
        if (!tok.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object) return null;
        string raw = pre.GetRawText();
        if (raw.Contains(@"\\p{N}{1,3}", StringComparison.Ordinal)) return PreTokenizerKind.Llama3;
        if (raw.Contains(@"[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|", StringComparison.Ordinal)) return PreTokenizerKind.Qwen2;
        if (raw.Contains("\"use_regex\":true", StringComparison.Ordinal) || raw.Contains("\"use_regex\": true", StringComparison.Ordinal)) return PreTokenizerKind.Gpt2;
        return null;
    }

    private static string Normalize(JsonElement normalizer, string text)
    {
        if (normalizer.ValueKind != JsonValueKind.Object) return text;
        switch (Str(normalizer, "type"))
        {
            case "NFC": return text.Normalize(NormalizationForm.FormC);
            case "NFD": return text.Normalize(NormalizationForm.FormD);
            case "NFKC": return text.Normalize(NormalizationForm.FormKC);
            case "NFKD": return text.Normalize(NormalizationForm.FormKD);
            case "Lowercase": return text.ToLowerInvariant();
            case "Prepend": return (Str(normalizer, "prepend") ?? "") + text;
            case "Sequence":
                if (normalizer.TryGetProperty("normalizers", out var list) && list.ValueKind == JsonValueKind.Array)
                    foreach (var inner in list.EnumerateArray()) text = Normalize(inner, text);
                return text;
            default: return text;
        }
    }

    /// <summary>The special tokens transformers' post-processor adds around a single sequence (add_special_tokens=True).</summary>
    private static int[] PostProcess(JsonElement tok, int[] ids)
    {
        if (!tok.TryGetProperty("post_processor", out var post) || post.ValueKind != JsonValueKind.Object) return ids;
        return Apply(post, ids);

        static int[] Apply(JsonElement p, int[] ids)
        {
            switch (Str(p, "type"))
            {
                case "Sequence":
                    if (p.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array)
                        foreach (var inner in list.EnumerateArray()) ids = Apply(inner, ids);
                    return ids;
                case "TemplateProcessing":
                {
                    var result = new List<int>();
                    if (!p.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array) return ids;
                    foreach (var piece in single.EnumerateArray())
                    {
                        if (piece.TryGetProperty("Sequence", out _)) { result.AddRange(ids); continue; }
                        if (SpecialTokenId(piece) is { } sid && p.TryGetProperty("special_tokens", out var st)
                            && st.TryGetProperty(sid, out var entry) && entry.TryGetProperty("ids", out var sids))
                            result.AddRange(sids.EnumerateArray().Select(x => x.GetInt32()));
                    }
                    return result.ToArray();
                }
                case "RobertaProcessing":
                case "BertProcessing":
                {
                    int cls = p.TryGetProperty("cls", out var c) && c.ValueKind == JsonValueKind.Array ? c[1].GetInt32() : -1;
                    int sep = p.TryGetProperty("sep", out var s) && s.ValueKind == JsonValueKind.Array ? s[1].GetInt32() : -1;
                    return [cls, .. ids, sep];
                }
                default:
                    return ids;
            }
        }
    }

    /// <summary>The vocabulary as an in-memory GGUF, the form Squeeze's tokenizer is built from.</summary>
    private static byte[] VocabImage(string[] tokens, int[] types, string[] merges, string pre)
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Architecture, GgufValue.String("llama"));
        w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("gpt2"));
        w.Set(GgufKeys.Tokenizer.Pre, GgufValue.String(pre));
        w.Set(GgufKeys.Tokenizer.Tokens, GgufValue.Strings(tokens));
        w.Set(GgufKeys.Tokenizer.TokenType, GgufValue.Array(GgufArray.Of(types)));
        w.Set(GgufKeys.Tokenizer.Merges, GgufValue.Strings(merges));
        var ms = new MemoryStream();
        w.WriteTo(ms);
        return ms.ToArray();
    }
}
