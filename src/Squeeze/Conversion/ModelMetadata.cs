using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Squeeze.Gguf;
using YamlDotNet.RepresentationModel;

namespace Squeeze.Conversion;

/// <summary>
/// The <c>general.*</c> metadata convert_hf_to_gguf.py writes (gguf-py's <c>Metadata</c>): authorship from the model
/// card's YAML front matter (README.md), the model id in config.json's <c>_name_or_path</c> and the folder's name,
/// sampling defaults from generation_config.json, and a size label from the parameter count.
/// </summary>
public sealed partial class ModelMetadata
{
    public string? Name { get; set; }
    public string? Author { get; set; }
    public string? Version { get; set; }
    public string? Organization { get; set; }
    public string? Finetune { get; set; }
    public string? Basename { get; set; }
    public string? Description { get; set; }
    public string? QuantizedBy { get; set; }
    public string? SizeLabel { get; set; }
    public string? Url { get; set; }
    public string? Doi { get; set; }
    public string? Uuid { get; set; }
    public string? RepoUrl { get; set; }
    public string? SourceUrl { get; set; }
    public string? SourceDoi { get; set; }
    public string? SourceUuid { get; set; }
    public string? SourceRepoUrl { get; set; }
    public string? License { get; set; }
    public string? LicenseName { get; set; }
    public string? LicenseLink { get; set; }
    public List<Dictionary<string, string>>? BaseModels { get; set; }
    public List<Dictionary<string, string>>? Datasets { get; set; }
    public List<string>? Tags { get; set; }
    public List<string>? Languages { get; set; }

    /// <summary>generation_config.json values, kept with their JSON kind: (GGUF key, value).</summary>
    public List<(string Key, JsonElement Value)> Sampling { get; } = [];

    /// <summary>
    /// Gathers the metadata of the model in <paramref name="folder"/> as gguf-py's <c>Metadata.load</c> does;
    /// <paramref name="totalParams"/> (0 for a vocabulary-only file) decides whether a size in a name is a size label.
    /// </summary>
    public static ModelMetadata Load(string folder, long totalParams)
    {
        var m = new ModelMetadata();
        var card = LoadModelCard(folder);
        JsonElement? hf = File.Exists(Path.Combine(folder, "config.json")) ? HfConfig.ReadJsonObject(Path.Combine(folder, "config.json")) : null;
        m.ApplyHeuristics(card, hf, Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar)), totalParams);
        m.LoadGenerationConfig(Path.Combine(folder, "generation_config.json"));
        return m;
    }

    private static readonly (string Json, string Key, char Kind)[] SamplingFields =
    [
        ("sequence", GgufKeys.General.SamplingSequence, 's'),
        ("top_k", GgufKeys.General.SamplingTopK, 'i'),
        ("top_p", GgufKeys.General.SamplingTopP, 'f'),
        ("min_p", GgufKeys.General.SamplingMinP, 'f'),
        ("xtc_probability", GgufKeys.General.SamplingXtcProbability, 'f'),
        ("xtc_threshold", GgufKeys.General.SamplingXtcThreshold, 'f'),
        ("temperature", GgufKeys.General.SamplingTemp, 'f'),
        ("penalty_last_n", GgufKeys.General.SamplingPenaltyLastN, 'i'),
        ("penalty_repeat", GgufKeys.General.SamplingPenaltyRepeat, 'f'),
        ("mirostat", GgufKeys.General.SamplingMirostat, 'i'),
        ("mirostat_tau", GgufKeys.General.SamplingMirostatTau, 'f'),
        ("mirostat_eta", GgufKeys.General.SamplingMirostatEta, 'f'),
    ];

    private void LoadGenerationConfig(string path)
    {
        if (!File.Exists(path)) return;
        JsonElement root;
        // gguf-py ignores a generation_config.json it cannot read.
        try { root = HfConfig.ReadJsonObject(path); }
        catch (InvalidInputException) { return; }
        foreach (var (json, key, _) in SamplingFields)
            if (root.TryGetProperty(json, out var v) && v.ValueKind != JsonValueKind.Null)
                Sampling.Add((key, v.Clone()));
    }

    /// <summary>Writes the keys in gguf-py's order (<c>Metadata.set_gguf_meta_model</c>).</summary>
    public void WriteTo(GgufWriter w)
    {
        foreach (var (key, v) in Sampling)
        {
            char kind = SamplingFields.First(f => f.Key == key).Kind;
            var value = kind switch
            {
                's' when v.ValueKind == JsonValueKind.String => GgufValue.String(v.GetString()!),
                'i' when v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) => GgufValue.Int32(i),
                'f' when v.ValueKind == JsonValueKind.Number => GgufValue.Float32((float)v.GetDouble()),
                _ => throw new InvalidInputException($"generation_config.json: {key} has an unexpected value {v.GetRawText()}"),
            };
            if (value.Value is string s && s.Length == 0) continue;
            w.Set(key, value);
        }
        void Str(string key, string? value)
        {
            // gguf-py's add_string skips empty strings.
            if (!string.IsNullOrEmpty(value)) w.Set(key, GgufValue.String(value));
        }
        Str(GgufKeys.General.Name, Name ?? throw new InvalidOperationException("the model has no name"));
        Str(GgufKeys.General.Author, Author);
        Str(GgufKeys.General.Version, Version);
        Str(GgufKeys.General.Organization, Organization);
        Str(GgufKeys.General.Finetune, Finetune);
        Str(GgufKeys.General.Basename, Basename);
        Str(GgufKeys.General.Description, Description);
        Str(GgufKeys.General.QuantizedBy, QuantizedBy);
        Str(GgufKeys.General.SizeLabel, SizeLabel);
        Str(GgufKeys.General.License, License);
        Str(GgufKeys.General.LicenseName, LicenseName);
        Str(GgufKeys.General.LicenseLink, LicenseLink);
        Str(GgufKeys.General.Url, Url);
        Str(GgufKeys.General.Doi, Doi);
        Str(GgufKeys.General.Uuid, Uuid);
        Str(GgufKeys.General.RepoUrl, RepoUrl);
        Str(GgufKeys.General.SourceUrl, SourceUrl);
        Str(GgufKeys.General.SourceDoi, SourceDoi);
        Str(GgufKeys.General.SourceUuid, SourceUuid);
        Str(GgufKeys.General.SourceRepoUrl, SourceRepoUrl);
        string[] fields = ["name", "author", "version", "organization", "description", "url", "doi", "uuid", "repo_url"];
        if (BaseModels is not null)
        {
            w.Set(GgufKeys.General.BaseModelCount, GgufValue.UInt32((uint)BaseModels.Count));
            for (int i = 0; i < BaseModels.Count; i++)
                foreach (var f in fields)
                    if (BaseModels[i].TryGetValue(f, out var v)) Str(GgufKeys.General.BaseModel(i, f), v);
        }
        if (Datasets is not null)
        {
            w.Set(GgufKeys.General.DatasetCount, GgufValue.UInt32((uint)Datasets.Count));
            for (int i = 0; i < Datasets.Count; i++)
                foreach (var f in fields)
                    if (Datasets[i].TryGetValue(f, out var v)) Str(GgufKeys.General.Dataset(i, f), v);
        }
        // gguf-py's add_array skips empty arrays.
        if (Tags is { Count: > 0 }) w.Set(GgufKeys.General.Tags, GgufValue.Strings(Tags));
        if (Languages is { Count: > 0 }) w.Set(GgufKeys.General.Languages, GgufValue.Strings(Languages));
    }

    // ---- model card ------------------------------------------------------------------------------------------

    /// <summary>The YAML front matter of README.md (between a first line "---" and the next "---"), or an empty map.</summary>
    internal static Dictionary<string, object?> LoadModelCard(string folder)
    {
        string path = Path.Combine(folder, "README.md");
        var empty = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (!File.Exists(path)) return empty;
        var lines = File.ReadAllText(path).ReplaceLineEndings("\n").Split('\n');
        if (lines.Length == 0 || lines[0] != "---") return empty;
        var yaml = new StringBuilder();
        for (int i = 1; i < lines.Length && lines[i] != "---"; i++) yaml.Append(lines[i]).Append('\n');
        // gguf-py's fixes: the "Norway problem" (a bare no is a boolean in YAML 1.1) and tabs for indentation.
        string text = yaml.ToString().Replace("- no\n", "- \"no\"\n", StringComparison.Ordinal).Replace("\t", "  ", StringComparison.Ordinal);
        if (text.Trim().Length == 0) return empty;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            if (stream.Documents.Count == 0 || Convert(stream.Documents[0].RootNode) is not Dictionary<string, object?> map)
                return empty; // gguf-py logs and ignores a front matter that is not a mapping
            return map;
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new InvalidInputException($"README.md: its YAML front matter is invalid (line {e.Start.Line}: {e.Message.ReplaceLineEndings(" ")})");
        }
    }

    /// <summary>YAML to plain values: mappings, lists, strings, and null for YAML's null scalars.</summary>
    private static object? Convert(YamlNode node) => node switch
    {
        YamlMappingNode m => m.Children.ToDictionary(kv => ((kv.Key as YamlScalarNode)?.Value) ?? kv.Key.ToString(), kv => Convert(kv.Value), StringComparer.Ordinal),
        YamlSequenceNode s => s.Children.Select(Convert).ToList(),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain, Value: null or "" or "~" or "null" or "Null" or "NULL" } => null,
        YamlScalarNode sc => sc.Value,
        _ => null,
    };

    private void ApplyHeuristics(Dictionary<string, object?> card, JsonElement? hf, string folderName, long totalParams)
    {
        void Use(Action<string> set, Func<string?> get, string cardKey)
        {
            if (get() is null && card.TryGetValue(cardKey, out var v) && v is not null) set(AsText(v));
        }
        // llama.cpp's own keys, then the same with model_ prefixes, then others seen in the wild.
        Use(v => Name = v, () => Name, "name");
        Use(v => Author = v, () => Author, "author");
        Use(v => Version = v, () => Version, "version");
        Use(v => Organization = v, () => Organization, "organization");
        Use(v => Description = v, () => Description, "description");
        Use(v => Finetune = v, () => Finetune, "finetune");
        Use(v => Basename = v, () => Basename, "basename");
        Use(v => SizeLabel = v, () => SizeLabel, "size_label");
        Use(v => SourceUrl = v, () => SourceUrl, "url");
        Use(v => SourceDoi = v, () => SourceDoi, "doi");
        Use(v => SourceUuid = v, () => SourceUuid, "uuid");
        Use(v => SourceRepoUrl = v, () => SourceRepoUrl, "repo_url");
        Use(v => Name = v, () => Name, "model_name");
        Use(v => Author = v, () => Author, "model_author");
        Use(v => Version = v, () => Version, "model_version");
        Use(v => Organization = v, () => Organization, "model_organization");
        Use(v => Description = v, () => Description, "model_description");
        Use(v => Finetune = v, () => Finetune, "model_finetune");
        Use(v => Basename = v, () => Basename, "model_basename");
        Use(v => SizeLabel = v, () => SizeLabel, "model_size_label");
        Use(v => SourceUrl = v, () => SourceUrl, "model_url");
        Use(v => SourceDoi = v, () => SourceDoi, "model_doi");
        Use(v => SourceUuid = v, () => SourceUuid, "model_uuid");
        Use(v => SourceRepoUrl = v, () => SourceRepoUrl, "model_repo_url");
        Use(v => Author = v, () => Author, "model_creator");
        Use(v => Basename = v, () => Basename, "model_type");

        if (card.ContainsKey("base_model") || card.ContainsKey("base_models") || card.ContainsKey("base_model_sources"))
        {
            var value = First(card, "base_model", "base_models", "base_model_sources");
            BaseModels ??= [];
            foreach (var id in Items(value)) BaseModels.Add(Source(id, totalParams, "base model"));
        }
        if (card.ContainsKey("datasets") || card.ContainsKey("dataset") || card.ContainsKey("dataset_sources"))
        {
            var value = First(card, "datasets", "dataset", "dataset_sources");
            Datasets ??= [];
            foreach (var id in Items(value)) Datasets.Add(Source(id, totalParams, "dataset"));
        }

        // A list of licences is joined with commas, as set_gguf_meta_model does.
        if (License is null && card.TryGetValue("license", out var lic) && lic is not null)
            License = lic is List<object?> l ? string.Join(",", l.Select(x => x is null ? "None" : AsText(x))) : AsText(lic);
        Use(v => LicenseName = v, () => LicenseName, "license_name");
        Use(v => LicenseLink = v, () => LicenseLink, "license_link");
        AppendList(Tags, "tags", list => Tags = list);
        AppendList(Tags, "pipeline_tag", list => Tags = list);
        AppendList(Languages, "languages", list => Languages = list);
        AppendList(Languages, "language", list => Languages = list);

        void AppendList(List<string>? current, string key, Action<List<string>> set)
        {
            if (!card.TryGetValue(key, out var v) || v is null) return;
            var list = current ?? [];
            if (v is string s) list.Add(s);
            else if (v is List<object?> items) list.AddRange(items.Select(x => x is null ? "None" : AsText(x)));
            set(list);
        }

        // config.json's _name_or_path when it is a model id rather than a path, then the folder's name.
        if (hf is { } h && h.TryGetProperty("_name_or_path", out var nop) && nop.ValueKind == JsonValueKind.String
            && nop.GetString()!.Count(c => c == '/') <= 1)
            FillFromId(nop.GetString()!, totalParams);
        FillFromId(folderName, totalParams);
    }

    private void FillFromId(string id, long totalParams)
    {
        var (full, org, basename, finetune, version, size) = ModelIdComponents(id, totalParams);
        if (Name is null && full is not null) Name = IdToTitle(full);
        if (Organization is null && org is not null) Organization = IdToTitle(org);
        Basename ??= basename;
        Finetune ??= finetune;
        Version ??= version;
        SizeLabel ??= size;
    }

    private static object? First(Dictionary<string, object?> card, params string[] keys)
    {
        foreach (var k in keys) if (card.TryGetValue(k, out var v)) return v;
        return null;
    }

    private static IEnumerable<object?> Items(object? value) => value switch
    {
        string s => [s],
        List<object?> l => l,
        _ => [],
    };

    private static string AsText(object v) => v switch
    {
        string s => s,
        _ => throw new InvalidInputException($"README.md: expected a text value in the front matter, found a {(v is List<object?> ? "list" : "mapping")}"),
    };

    /// <summary>A base model or dataset entry from an id, a URL or a mapping (gguf-py's rules).</summary>
    private static Dictionary<string, string> Source(object? id, long totalParams, string what)
    {
        var entry = new Dictionary<string, string>(StringComparer.Ordinal);
        switch (id)
        {
            case string s when s.StartsWith("http://", StringComparison.Ordinal) || s.StartsWith("https://", StringComparison.Ordinal)
                || s.StartsWith("ssh://", StringComparison.Ordinal):
                entry["repo_url"] = s;
                if (s.Contains("huggingface.co", StringComparison.Ordinal) && HfUrl().Match(s) is { Success: true } m)
                {
                    var (full, org, _, _, version, _) = ModelIdComponents(m.Groups[1].Value, totalParams);
                    if (full is not null) entry["name"] = IdToTitle(full);
                    if (org is not null) entry["organization"] = IdToTitle(org);
                    if (version is not null) entry["version"] = version;
                }
                break;
            case string s:
            {
                var (full, org, _, _, version, _) = ModelIdComponents(s, totalParams);
                if (full is not null) entry["name"] = IdToTitle(full);
                if (org is not null) entry["organization"] = IdToTitle(org);
                if (version is not null) entry["version"] = version;
                if (org is not null && full is not null) entry["repo_url"] = $"https://huggingface.co/{org}/{full}";
                break;
            }
            case Dictionary<string, object?> d:
                foreach (var (k, v) in d) if (v is string sv) entry[k] = sv;
                break;
            default:
                throw new InvalidInputException($"README.md: a {what} entry is neither an id, a URL nor a mapping");
        }
        return entry;
    }

    [GeneratedRegex(@"^https?://huggingface.co/([^/]+/[^/]+)$")]
    private static partial Regex HfUrl();

    // ---- model id heuristics (gguf-py Metadata.get_model_id_components, id_to_title) --------------------------

    [GeneratedRegex(@"^(?:(v|iter)?\d+([.]\d+)*)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex VersionPart();

    [GeneratedRegex(@"^(?:i?q\d(_\w)*|b?fp?(16|32))$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex TypePart();

    [GeneratedRegex(@"^(?:(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl))$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SizePart();

    [GeneratedRegex(@"^(?:chat|instruct|vision|lora)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex FinetunePart();

    [GeneratedRegex(@"^(v\d+(?:\.\d+)*|\d.*)$")]
    private static partial Regex VersionOrNumberWord();

    /// <summary>Splits a model id (<c>org/Name-7B-Instruct-v0.2</c>) into full name, organisation, basename, finetune,
    /// version and size label, as gguf-py does.</summary>
    internal static (string? Full, string? Org, string? Basename, string? Finetune, string? Version, string? SizeLabel) ModelIdComponents(string? modelId, long totalParams)
    {
        if (modelId is null) return default;
        if (modelId.Contains(' ')) return (modelId, null, null, null, null, null);
        string? org;
        string full;
        int slash = modelId.IndexOf('/');
        if (slash >= 0) { org = modelId[..slash]; full = modelId[(slash + 1)..]; }
        else { org = null; full = modelId; }
        if (org is { Length: > 0 } && org[0] == '.') org = null;

        var parts = full.Split('-').Where(p => p.Length > 0).ToList();
        var types = parts.Select(_ => new HashSet<string>()).ToList();
        for (int i = 0; i < parts.Count; i++)
        {
            string part = parts[i];
            if (VersionPart().IsMatch(part)) types[i].Add("version");
            else if (TypePart().IsMatch(part)) { types[i].Add("type"); parts[i] = part.ToUpperInvariant(); }
            else if (i > 0 && SizePart().IsMatch(part))
            {
                part = part.Replace('_', '.');
                if (char.IsDigit(part[^1])) part = part[..^2] + "." + part[^1] + part[^2]; // bloom-7b1 -> 7.1b
                if (part.Length > 1 && char.IsDigit(part[^2]) && "kmbt".Contains(part[^1])) part = part[..^1] + char.ToUpperInvariant(part[^1]);
                if (totalParams != 0 && double.TryParse(part[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double number))
                {
                    double labelParams = number * Math.Pow(1000, " KMBT".IndexOf(part[^1]));
                    if ((totalParams < 0 && labelParams < Math.Abs(totalParams) / 8)
                        || (totalParams > 0 && Math.Abs(labelParams - totalParams) > 7 * totalParams / 8))
                    {
                        types[i].Add("finetune"); // likely a context length
                        part = part[..^1] + char.ToLowerInvariant(part[^1]);
                    }
                }
                if (types[i].Count == 0) types[i].Add("size_label");
                parts[i] = part;
            }
            else if (i > 0 && FinetunePart().IsMatch(part))
            {
                if (totalParams < 0 && part.Equals("lora", StringComparison.OrdinalIgnoreCase)) types[i].Add("type");
                else types[i].Add("finetune");
            }
        }
        // Word sizes (small, large) give way to numeric ones.
        if (parts.Zip(types).Any(p => p.Second.Contains("size_label") && p.First.Any(char.IsDigit)))
            foreach (var (p, t) in parts.Zip(types))
                if (t.Contains("size_label") && p.All(char.IsLetter)) t.Remove("size_label");

        bool atStart = true;
        foreach (var (p, t) in parts.Zip(types))
        {
            if (atStart && ((t.Count == 0 && char.IsLetter(p[0])) || t.Contains("version"))) t.Add("basename");
            else
            {
                atStart = false;
                if (t.Count == 0) t.Add("finetune");
            }
        }
        for (int i = parts.Count - 1; i >= 0; i--)
        {
            if (types[i].Contains("basename") && types[i].Count > 1) types[i].Remove("basename");
            else break;
        }
        string? Join(IEnumerable<string> xs) { var s = string.Join("-", xs); return s.Length == 0 ? null : s; }
        var pt = parts.Zip(types).ToList();
        string? basename = Join(pt.Where(x => x.Second.Contains("basename")).Select(x => x.First));
        string? size = Join(pt.Where(x => x.Second.Contains("size_label")).Select(x => x.First).Distinct());
        string? finetune = Join(pt.Where(x => x.Second.Contains("finetune")).Select(x => x.First));
        string? version = Join(pt.Where(x => x.Second.Contains("version") && !x.Second.Contains("basename")).Select(x => x.First));
        if (size is null && finetune is null && version is null) basename = null;
        return (full, org, basename, finetune, version, size);
    }

    /// <summary>"qwen3-8b-instruct" -> "Qwen3 8b Instruct" (title case unless an acronym or a version/number).</summary>
    internal static string IdToTitle(string s) =>
        string.Join(' ', s.Trim().Replace('-', ' ').Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Select(w => IsLower(w) && !VersionOrNumberWord().IsMatch(w) ? PythonTitle(w) : w));

    private static bool IsLower(string w) => w.Any(char.IsLower) && !w.Any(char.IsUpper);

    /// <summary>Python's <c>str.title()</c>: a letter after a non-letter starts a word.</summary>
    private static string PythonTitle(string w)
    {
        var sb = new StringBuilder(w.Length);
        bool previousCased = false;
        foreach (char c in w)
        {
            bool cased = char.IsUpper(c) || char.IsLower(c);
            sb.Append(cased ? (previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c)) : c);
            previousCased = cased;
        }
        return sb.ToString();
    }

    // ---- size label (gguf-py utility.size_label) --------------------------------------------------------------

    /// <summary>"8.2B", "600M", "8x7B": the parameter count rounded as gguf-py prints it.</summary>
    public static string SizeLabelOf(long totalParams, long sharedParams, long expertParams, int expertCount) =>
        expertCount > 0
            ? $"{expertCount}x{RoundedNotation(Math.Abs(sharedParams) + Math.Abs(expertParams), 2)}"
            : RoundedNotation(Math.Abs(totalParams), 2);

    internal static string RoundedNotation(long count, int minDigits)
    {
        double scaled;
        string suffix;
        if (count > 1e12) { scaled = count * 1e-12; suffix = "T"; }
        else if (count > 1e9) { scaled = count * 1e-9; suffix = "B"; }
        else if (count > 1e6) { scaled = count * 1e-6; suffix = "M"; }
        else { scaled = count * 1e-3; suffix = "K"; }
        // Python: round() and format both round half to even on the exact binary value.
        string integer = ((long)Math.Round(scaled, MidpointRounding.ToEven)).ToString(CultureInfo.InvariantCulture).TrimStart('0');
        int fix = Math.Max(minDigits - integer.Length, 0);
        return FormatFixed(scaled, fix) + suffix;
    }

    /// <summary>The exact decimal value of <paramref name="x"/> (x &gt;= 0) rounded half to even at <paramref name="digits"/>
    /// places, as Python's <c>f"{x:.{digits}f}"</c> prints it.</summary>
    internal static string FormatFixed(double x, int digits)
    {
        long bits = BitConverter.DoubleToInt64Bits(x);
        int exp = (int)((bits >> 52) & 0x7FF);
        long mant = bits & 0xFFFFFFFFFFFFFL;
        if (exp == 0) exp = 1; else mant |= 1L << 52;
        exp -= 1075; // x = mant * 2^exp
        // scaled = x * 10^digits as a fraction num/den
        BigInteger num = new BigInteger(mant) * BigInteger.Pow(10, digits), den = BigInteger.One;
        if (exp >= 0) num <<= exp; else den <<= -exp;
        var q = BigInteger.DivRem(num, den, out var r);
        var twice = r * 2;
        if (twice > den || (twice == den && !q.IsEven)) q += 1;
        string s = q.ToString(CultureInfo.InvariantCulture).PadLeft(digits + 1, '0');
        return digits == 0 ? s : s[..^digits] + "." + s[^digits..];
    }
}
