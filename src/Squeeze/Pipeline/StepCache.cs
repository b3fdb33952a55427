using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Squeeze.IO;

namespace Squeeze.Pipeline;

/// <summary>
/// Remembers which steps of a pipeline are done and with what inputs. A step's key is the SHA-256 of its name, its
/// settings and the contents of its input files; when the key and the recorded outputs are unchanged the step is
/// skipped. Content hashes are memoized by (path, size, modification time) so large models are hashed once.
/// Everything lives in <c>OUTPUT/.squeeze/</c> and is written atomically.
/// </summary>
public sealed class StepCache
{
    /// <summary>Bumped when the meaning of a step's outputs changes, so old caches are not trusted.</summary>
    public const int Version = 1;

    private readonly string _dir;
    private readonly Dictionary<string, HashMemo> _hashes;
    private readonly Lock _lock = new();

    public StepCache(string outputFolder)
    {
        _dir = Path.Combine(outputFolder, ".squeeze");
        Directory.CreateDirectory(Path.Combine(_dir, "steps"));
        _hashes = LoadHashes();
    }

    private sealed record HashMemo(long Size, long ModifiedTicks, string Sha256);

    /// <summary>A step's record: its key and the size and hash of each output when it finished.</summary>
    public sealed record Manifest(string Step, string Key, Dictionary<string, OutputRecord> Outputs, DateTime FinishedUtc);

    public sealed record OutputRecord(long Size, string Sha256);

    /// <summary>The SHA-256 of a file's contents (hex), from the memo when the file's size and time are unchanged.</summary>
    public string HashFile(string path) => Hash(path, save: true);

    private string Hash(string path, bool save)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"file not found: {path}", path);
        var full = info.FullName;
        lock (_lock)
            if (_hashes.TryGetValue(full, out var memo) && memo.Size == info.Length && memo.ModifiedTicks == info.LastWriteTimeUtc.Ticks)
                return memo.Sha256;
        string hash;
        using (var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20))
            hash = Convert.ToHexStringLower(SHA256.HashData(stream));
        lock (_lock)
        {
            _hashes[full] = new HashMemo(info.Length, info.LastWriteTimeUtc.Ticks, hash);
            if (save) SaveHashes();
        }
        return hash;
    }

    /// <summary>The SHA-256 of every file of a folder (names and contents, in ordinal order), for checkpoint folders.</summary>
    public string HashFolder(string folder)
    {
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).StartsWith('.'))
            .Order(StringComparer.Ordinal);
        var text = new StringBuilder();
        // The memo is written once for the whole folder, not once per file.
        foreach (var f in files) text.Append(Path.GetRelativePath(folder, f)).Append('\0').Append(Hash(f, save: false)).Append('\n');
        lock (_lock) SaveHashes();
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>The key of a step: its name, its settings (any JSON-serializable value) and its inputs' hashes.</summary>
    public static string Key(string step, object? settings, IEnumerable<KeyValuePair<string, string>> inputHashes)
    {
        var doc = new JsonObject
        {
            ["version"] = Version,
            ["step"] = step,
            ["settings"] = JsonSerializer.SerializeToNode(settings, settings?.GetType() ?? typeof(object), JsonOptions),
            ["inputs"] = new JsonObject(inputHashes.OrderBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => KeyValuePair.Create(p.Key, (JsonNode?)JsonValue.Create(p.Value)))),
        };
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(doc.ToJsonString())));
    }

    /// <summary>Whether <paramref name="step"/> finished with this key and its outputs are still there, unchanged in size.</summary>
    public bool IsDone(string step, string key, string outputFolder, out Manifest? manifest)
    {
        manifest = Read(step);
        if (manifest is null || manifest.Key != key) return false;
        foreach (var (relative, record) in manifest.Outputs)
        {
            var info = new FileInfo(Path.Combine(outputFolder, relative));
            if (!info.Exists || info.Length != record.Size) return false;
        }
        return true;
    }

    /// <summary>Records that a step finished: written last, so an interrupted step is never taken for done.</summary>
    public Manifest MarkDone(string step, string key, string outputFolder, IEnumerable<string> outputs)
    {
        var records = new Dictionary<string, OutputRecord>(StringComparer.Ordinal);
        foreach (var relative in outputs)
        {
            var path = Path.Combine(outputFolder, relative);
            if (!File.Exists(path)) throw new InvalidOperationException($"step {step} finished without writing {relative}");
            records[relative] = new OutputRecord(new FileInfo(path).Length, HashFile(path));
        }
        var manifest = new Manifest(step, key, records, DateTime.UtcNow);
        var json = JsonSerializer.SerializeToUtf8Bytes(manifest, JsonOptions);
        AtomicFile.Write(ManifestPath(step), s => s.Write(json));
        return manifest;
    }

    /// <summary>The recorded manifest of a step, or null (none, or unreadable: then the step simply reruns).</summary>
    public Manifest? Read(string step)
    {
        var path = ManifestPath(step);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<Manifest>(File.ReadAllBytes(path), JsonOptions); }
        catch (JsonException) { return null; }
    }

    private string ManifestPath(string step) => Path.Combine(_dir, "steps", step + ".json");

    private Dictionary<string, HashMemo> LoadHashes()
    {
        var path = Path.Combine(_dir, "hashes.json");
        try
        {
            if (File.Exists(path))
                return JsonSerializer.Deserialize<Dictionary<string, HashMemo>>(File.ReadAllBytes(path), JsonOptions) ?? [];
        }
        catch (JsonException) { }
        return [];
    }

    private void SaveHashes()
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(_hashes, JsonOptions);
        AtomicFile.Write(Path.Combine(_dir, "hashes.json"), s => s.Write(json));
    }

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };
}
