using System.Text.Json;

namespace Squeeze.Conversion;

/// <summary>
/// The weights of a Hugging Face checkpoint folder: <c>model.safetensors</c>, or shards listed by
/// <c>model.safetensors.index.json</c> (or, without an index, every <c>model*.safetensors</c>). Every shard is opened
/// and validated up front; the index and the shards must agree tensor for tensor.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    /// <summary>The index file's name.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsTensor> _byName;

    private SafetensorsCheckpoint(List<SafetensorsFile> files, List<SafetensorsTensor> tensors)
    {
        _files = files;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>
    /// Tensors in the order convert_hf_to_gguf.py visits them: shards in file-name order, each shard's tensors by name.
    /// </summary>
    public IReadOnlyList<SafetensorsTensor> Tensors { get; }

    /// <summary>The shard files, in file-name order.</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <summary>The tensor named <paramref name="name"/>, or null.</summary>
    public SafetensorsTensor? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Opens the checkpoint in <paramref name="folder"/>.</summary>
    /// <exception cref="SafetensorsFormatException">A shard or the index is invalid, or they disagree.</exception>
    public static SafetensorsCheckpoint Open(string folder)
    {
        if (!Directory.Exists(folder)) throw new InvalidInputException($"model folder not found: {folder}");
        string indexPath = Path.Combine(folder, IndexFileName);
        Dictionary<string, string>? weightMap = null;
        List<string> partNames;
        if (File.Exists(indexPath))
        {
            weightMap = ReadIndex(indexPath);
            partNames = weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            var missing = partNames.Where(p => !File.Exists(Path.Combine(folder, p))).ToList();
            if (missing.Count > 0)
                throw new SafetensorsFormatException(indexPath, 0, "weight_map", "every shard it names in the folder",
                    $"missing model files: {string.Join(", ", missing)}");
        }
        else
        {
            partNames = Directory.EnumerateFiles(folder)
                .Select(Path.GetFileName)
                .Where(n => n!.StartsWith("model", StringComparison.Ordinal) && n.EndsWith(".safetensors", StringComparison.Ordinal))
                .Select(n => n!)
                .Order(StringComparer.Ordinal)
                .ToList();
            if (partNames.Count == 0)
                throw new InvalidInputException($"no model.safetensors or model-*.safetensors in {folder} (only safetensors checkpoints are read)");
        }

        var files = new List<SafetensorsFile>();
        try
        {
            var tensors = new List<SafetensorsTensor>();
            var owner = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var part in partNames)
            {
                var file = SafetensorsFile.Open(Path.Combine(folder, part));
                files.Add(file);
                foreach (var t in file.Tensors)
                {
                    if (owner.TryGetValue(t.Name, out var first))
                        throw new SafetensorsFormatException(file.Path, 8, $"tensor '{t.Name}'", "each tensor in one shard", $"it is also in {first}");
                    owner[t.Name] = part;
                    tensors.Add(t);
                }
            }
            if (weightMap is not null)
            {
                var missing = weightMap.Keys.Where(n => !owner.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
                if (missing.Count > 0)
                {
                    var shards = missing.Select(n => weightMap[n]).Distinct().Order(StringComparer.Ordinal);
                    throw new SafetensorsFormatException(indexPath, 0, "weight_map", "every tensor it lists in its shard",
                        $"{missing.Count} missing ({Few(missing)}) in {string.Join(", ", shards)}: incomplete model files");
                }
                var extra = owner.Keys.Where(n => !weightMap.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
                if (extra.Count > 0)
                    throw new SafetensorsFormatException(indexPath, 0, "weight_map", "every tensor of the shards",
                        $"{extra.Count} not listed ({Few(extra)})");
                foreach (var (name, part) in owner)
                    if (weightMap[name] != part)
                        throw new SafetensorsFormatException(indexPath, 0, $"weight_map['{name}']", part, weightMap[name]);
            }
            return new SafetensorsCheckpoint(files, tensors);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    private static string Few(List<string> names) =>
        string.Join(", ", names.Take(3)) + (names.Count > 3 ? $", ... {names.Count - 3} more" : "");

    private static Dictionary<string, string> ReadIndex(string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(path, e.BytePositionInLine ?? 0, "index", "a JSON object", $"invalid JSON (line {(e.LineNumber ?? 0) + 1})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map)
                || map.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(path, 0, "weight_map", "an object of tensor name -> shard file", "none");
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new SafetensorsFormatException(path, 0, $"weight_map['{p.Name}']", "a shard file name", $"a JSON {p.Value.ValueKind.ToString().ToLowerInvariant()}");
                string part = p.Value.GetString()!;
                // A shard must be a file in the folder: no paths that would reach outside it.
                if (part.Length == 0 || part != Path.GetFileName(part) || part is "." or "..")
                    throw new SafetensorsFormatException(path, 0, $"weight_map['{p.Name}']", "a file name in the model folder", $"'{part}'");
                if (!result.TryAdd(p.Name, part))
                    throw new SafetensorsFormatException(path, 0, $"weight_map['{p.Name}']", "each tensor once", "a duplicate entry");
            }
            if (result.Count == 0) throw new SafetensorsFormatException(path, 0, "weight_map", "at least one tensor", "an empty map");
            return result;
        }
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
