using System.Globalization;
using Squeeze.Gguf;

namespace Squeeze.Imatrix;

/// <summary>
/// The importance weights quantizers take: for each weight, the mean squared activation of each input column
/// (per expert for 3-D weights), computed from an imatrix file exactly as llama-quantize's <c>load_imatrix</c> does
/// (tools/quantize/quantize.cpp at 815a2a591):
/// GGUF: <c>in_sum2 / count</c> per matrix, weight 1 for a matrix never exercised (count 0);
/// legacy: <c>data / ncall</c> (the data as stored when ncall is 0).
/// </summary>
public sealed class ImportanceMatrix
{
    private readonly Dictionary<string, float[]> _weights;

    private ImportanceMatrix(Dictionary<string, float[]> weights, string fileName, IReadOnlyList<string> datasets, int chunkCount, ImatrixFormat format)
    {
        _weights = weights;
        FileName = fileName;
        Datasets = datasets;
        ChunkCount = chunkCount;
        Format = format;
    }

    /// <summary>The file's name as the user gave it (written to <c>quantize.imatrix.file</c>).</summary>
    public string FileName { get; }

    public ImatrixFormat Format { get; }

    /// <summary>The calibration datasets; the first is written to <c>quantize.imatrix.dataset</c>.</summary>
    public IReadOnlyList<string> Datasets { get; }

    /// <summary>Chunks the imatrix was computed over (written to <c>quantize.imatrix.chunks_count</c> when above 0).</summary>
    public int ChunkCount { get; }

    /// <summary>Number of entries (written to <c>quantize.imatrix.entries_count</c>).</summary>
    public int EntryCount => _weights.Count;

    /// <summary>The entries' names.</summary>
    public IEnumerable<string> Names => _weights.Keys;

    /// <summary>Reads <paramref name="path"/> and normalizes it; <paramref name="path"/> is recorded as given.</summary>
    /// <exception cref="ImatrixFormatException">The file is not a valid imatrix, lacks the metadata llama-quantize requires, or yields a non-finite weight.</exception>
    public static ImportanceMatrix Load(string path) => From(ImatrixFile.Read(path), path);

    /// <summary>Normalizes a read imatrix file.</summary>
    public static ImportanceMatrix From(ImatrixFile file, string fileName)
    {
        if (file.Format == ImatrixFormat.Gguf && !file.HasMetadata)
            throw new ImatrixFormatException(-1, "metadata", $"{GgufKeys.Imatrix.Datasets}, {GgufKeys.Imatrix.ChunkCount} and {GgufKeys.Imatrix.ChunkSize} (llama-quantize requires them)", "some missing");
        var weights = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (name, entry) in file.Entries)
        {
            var e = new float[entry.Sums.Length];
            if (file.Format == ImatrixFormat.Gguf)
            {
                int ncounts = entry.Counts.Length;
                int ne0 = entry.Sums.Length / ncounts;
                for (int j = 0; j < ncounts; j++)
                {
                    float count = entry.Counts[j];
                    var sums = entry.Sums.AsSpan(j * ne0, ne0);
                    var dst = e.AsSpan(j * ne0, ne0);
                    if (count > 0f)
                        for (int i = 0; i < ne0; i++) dst[i] = sums[i] / count;
                    else
                        dst.Fill(1f);
                }
            }
            else
            {
                long ncall = entry.Counts.Length == 0 ? 0 : entry.Counts[0];
                if (ncall > 0)
                {
                    float c = ncall;
                    for (int i = 0; i < e.Length; i++) e[i] = entry.Sums[i] / c;
                }
                else entry.Sums.CopyTo(e, 0);
            }
            for (int i = 0; i < e.Length; i++)
                if (!float.IsFinite(e[i]))
                    throw new ImatrixFormatException(-1, $"entry '{name}'[{i}]", "a finite mean squared activation",
                        e[i].ToString("R", CultureInfo.InvariantCulture));
            weights.Add(name, e);
        }
        return new ImportanceMatrix(weights, fileName, file.Datasets, file.ChunkCount, file.Format);
    }

    /// <summary>Builds an importance matrix from weights already normalized (tests, collectors).</summary>
    public static ImportanceMatrix FromWeights(IReadOnlyDictionary<string, float[]> weights, string fileName, IReadOnlyList<string>? datasets = null, int chunkCount = 0)
    {
        var copy = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (name, w) in weights)
        {
            for (int i = 0; i < w.Length; i++)
                if (!float.IsFinite(w[i]))
                    throw new ArgumentException($"importance weights of '{name}' hold a non-finite value at {i}", nameof(weights));
            copy.Add(name, w.ToArray());
        }
        return new ImportanceMatrix(copy, fileName, datasets ?? [], chunkCount, ImatrixFormat.Gguf);
    }

    /// <summary>
    /// llama-quantize's <c>--include-weights</c> / <c>--exclude-weights</c>: keep only the entries whose names contain one
    /// of <paramref name="include"/>, or drop those that contain one of <paramref name="exclude"/> (not both at once).
    /// The entry count written to the output counts what is left.
    /// </summary>
    public ImportanceMatrix Filtered(IReadOnlyCollection<string> include, IReadOnlyCollection<string> exclude)
    {
        if (include.Count > 0 && exclude.Count > 0)
            throw new InvalidInputException("--include-weights and --exclude-weights cannot be used together");
        var kept = _weights.Where(kv =>
                (include.Count == 0 || include.Any(s => kv.Key.Contains(s, StringComparison.Ordinal))) &&
                !exclude.Any(s => kv.Key.Contains(s, StringComparison.Ordinal)))
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        return new ImportanceMatrix(kept, FileName, Datasets, ChunkCount, Format);
    }

    /// <summary>The weights of <paramref name="tensorName"/> (all experts), or null when the imatrix has none.</summary>
    public float[]? Find(string tensorName) => _weights.GetValueOrDefault(tensorName);

    /// <summary>
    /// Whether the entry for <paramref name="tensor"/> fits it: llama.cpp requires <c>ne[0] * ne[2]</c> values (one
    /// vector per expert). Returns true when there is no entry.
    /// </summary>
    public bool Fits(GgufTensorInfo tensor, out int entrySize, out long expected)
    {
        expected = tensor.Shape[0] * (tensor.Shape.Count > 2 ? tensor.Shape[2] : 1);
        var w = Find(tensor.Name);
        entrySize = w?.Length ?? 0;
        return w is null || w.Length == expected;
    }
}
