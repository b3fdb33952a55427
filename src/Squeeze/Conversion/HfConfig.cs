using System.Text.Json;

namespace Squeeze.Conversion;

/// <summary>
/// A Hugging Face <c>config.json</c>: the hyperparameters convert_hf_to_gguf.py reads, looked up by the same lists of
/// alternative names. A <c>text_config</c> object is merged into the top level (its keys win), as the converter does.
/// </summary>
public sealed class HfConfig
{
    private readonly Dictionary<string, JsonElement> _values;

    private HfConfig(string path, Dictionary<string, JsonElement> values)
    {
        Path = path;
        _values = values;
    }

    /// <summary>The config file.</summary>
    public string Path { get; }

    /// <summary>Reads <c>config.json</c> in <paramref name="folder"/>.</summary>
    public static HfConfig Load(string folder)
    {
        string path = System.IO.Path.Combine(folder, "config.json");
        if (!File.Exists(path)) throw new InvalidInputException($"config.json not found in {folder}: not a Hugging Face model folder");
        var root = ReadJsonObject(path);
        var values = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in root.EnumerateObject()) values[p.Name] = p.Value.Clone();
        if (values.TryGetValue("text_config", out var text) && text.ValueKind == JsonValueKind.Object)
            foreach (var p in text.EnumerateObject()) values[p.Name] = p.Value.Clone();
        return new HfConfig(path, values);
    }

    /// <summary>Parses a JSON file whose top level must be an object; a bad file is one clear error.</summary>
    internal static JsonElement ReadJsonObject(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Skip });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidInputException($"{System.IO.Path.GetFileName(path)}: expected a JSON object, found a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}");
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{System.IO.Path.GetFileName(path)} is not valid JSON (line {(e.LineNumber ?? 0) + 1}, byte {e.BytePositionInLine ?? 0})");
        }
    }

    /// <summary>Whether <paramref name="key"/> is present (a JSON null counts as absent, as Python's <c>None</c> does for these lookups).</summary>
    public bool Has(string key) => _values.TryGetValue(key, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>The raw value of <paramref name="key"/>, when present and not null.</summary>
    public JsonElement? Get(string key) => Has(key) ? _values[key] : null;

    /// <summary>The first of <paramref name="keys"/> that is present (convert_hf_to_gguf's <c>find_hparam</c>), or null.</summary>
    public (string Key, JsonElement Value)? Find(params string[] keys)
    {
        foreach (var k in keys)
            if (_values.TryGetValue(k, out var v)) return v.ValueKind == JsonValueKind.Null ? null : (k, v);
        return null;
    }

    /// <summary>The first present key of <paramref name="keys"/> as a non-negative integer, or null.</summary>
    public long? FindInt(params string[] keys)
    {
        if (Find(keys) is not { } f) return null;
        if (f.Value.ValueKind != JsonValueKind.Number || !f.Value.TryGetInt64(out long v) || v < 0)
            throw new InvalidInputException($"config.json: {f.Key} must be a non-negative integer, not {f.Value.GetRawText()}");
        return v;
    }

    /// <summary>The first present key of <paramref name="keys"/> as a number, or null.</summary>
    public double? FindNumber(params string[] keys)
    {
        if (Find(keys) is not { } f) return null;
        if (f.Value.ValueKind != JsonValueKind.Number)
            throw new InvalidInputException($"config.json: {f.Key} must be a number, not {f.Value.GetRawText()}");
        return f.Value.GetDouble();
    }

    /// <summary>An integer that must be present and positive.</summary>
    public long RequireInt(params string[] keys)
    {
        long v = FindInt(keys) ?? throw new InvalidInputException($"config.json has none of {string.Join(", ", keys)}");
        if (v == 0) throw new InvalidInputException($"config.json: {keys[0]} must be positive");
        return v;
    }

    /// <summary>A boolean, or <paramref name="fallback"/> when absent.</summary>
    public bool Bool(string key, bool fallback)
    {
        if (Get(key) is not { } v) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidInputException($"config.json: {key} must be true or false, not {v.GetRawText()}"),
        };
    }

    /// <summary>A string, or null when absent.</summary>
    public string? String(string key) => Get(key) is { ValueKind: JsonValueKind.String } v ? v.GetString() : null;

    /// <summary>The first entry of <c>architectures</c> (what convert_hf_to_gguf.py dispatches on).</summary>
    public string Architecture
    {
        get
        {
            if (Get("architectures") is { ValueKind: JsonValueKind.Array } a && a.GetArrayLength() > 0 && a[0].ValueKind == JsonValueKind.String)
                return a[0].GetString()!;
            throw new InvalidInputException("config.json has no \"architectures\" list: cannot tell the model's architecture");
        }
    }
}
