using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Imatrix;

/// <summary>The two imatrix file formats llama.cpp reads.</summary>
public enum ImatrixFormat
{
    /// <summary>The legacy <c>.dat</c> format (reference.md §1.4): per entry a name, a call count and normalized sums.</summary>
    Legacy,
    /// <summary>The GGUF format (reference.md §1.5): raw <c>.in_sum2</c> sums and <c>.counts</c> per weight.</summary>
    Gguf,
}

/// <summary>
/// One imatrix entry as stored: the sums of squared activations per input column (per expert for 3-D weights) and
/// the counts they were accumulated over, as llama.cpp's <c>common_imatrix_load</c> returns them.
/// </summary>
/// <param name="Name">The weight's name (<c>blk.0.ffn_down.weight</c>).</param>
/// <param name="Sums">
/// GGUF: the raw Σx² (<c>.in_sum2</c>), <c>ne0 * n_mat</c> values. Legacy: the stored data, already divided by the
/// token count and multiplied by <c>ncall</c>.
/// </param>
/// <param name="Counts">GGUF: one token count per matrix (the stored float rounded to an integer, as llama.cpp does). Legacy: <c>{ ncall }</c>.</param>
/// <param name="InSum">GGUF only, when the file has it: the raw Σx (<c>.in_sum</c>, as eaddario's PR #14891 stores it), same shape as <paramref name="Sums"/>.</param>
public sealed record ImatrixEntry(string Name, float[] Sums, long[] Counts, float[]? InSum = null);

/// <summary>
/// An imatrix file read and validated, in either format. <see cref="ImportanceMatrix"/> turns it into the per-column
/// importance weights quantizers take.
/// </summary>
public sealed class ImatrixFile
{
    private ImatrixFile(ImatrixFormat format, SortedDictionary<string, ImatrixEntry> entries, IReadOnlyList<string> datasets,
        int chunkCount, int chunkSize, bool hasMetadata, LayerImportance? layerImportance = null, ImatrixRunState? runState = null)
    {
        LayerImportance = layerImportance;
        RunState = runState;
        Format = format;
        Entries = entries;
        Datasets = datasets;
        ChunkCount = chunkCount;
        ChunkSize = chunkSize;
        HasMetadata = hasMetadata;
    }

    public ImatrixFormat Format { get; }

    /// <summary>The entries by weight name, in ordinal order.</summary>
    public IReadOnlyDictionary<string, ImatrixEntry> Entries { get; }

    /// <summary>The calibration datasets (GGUF: <c>imatrix.datasets</c>; legacy: the optional trailer's file name).</summary>
    public IReadOnlyList<string> Datasets { get; }

    /// <summary>Chunks processed (GGUF: <c>imatrix.chunk_count</c>; legacy: the optional trailer's last chunk), 0 when absent.</summary>
    public int ChunkCount { get; }

    /// <summary>Tokens per chunk (GGUF: <c>imatrix.chunk_size</c>); 0 when absent and always for legacy files.</summary>
    public int ChunkSize { get; }

    /// <summary>
    /// GGUF: whether <c>imatrix.datasets</c>, <c>imatrix.chunk_count</c> and <c>imatrix.chunk_size</c> are all present
    /// (llama-quantize refuses a GGUF imatrix without them). Legacy files carry no such metadata.
    /// </summary>
    public bool HasMetadata { get; }

    /// <summary>Squeeze's per-layer importance scores, when the GGUF file carries them (docs/FORMATS.md).</summary>
    public LayerImportance? LayerImportance { get; }

    /// <summary>Where a Squeeze collection stood when it saved this file (for <c>--resume</c>), when recorded.</summary>
    public ImatrixRunState? RunState { get; }

    /// <summary>Reads an imatrix file, choosing the format by its first four bytes ("GGUF" or not), as llama.cpp does.</summary>
    /// <exception cref="ImatrixFormatException">The file is not a valid imatrix.</exception>
    public static ImatrixFile Read(string path)
    {
        using (var probe = File.OpenRead(path))
        {
            Span<byte> magic = stackalloc byte[4];
            int n = probe.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
            if (n == 4 && BinaryPrimitives.ReadUInt32LittleEndian(magic) == GgufFile.Magic)
            {
                probe.Dispose();
                GgufFile gguf;
                try { gguf = GgufFile.Open(path); }
                catch (GgufFormatException e) { throw Wrap(e); }
                using (gguf) return ReadGguf(gguf);
            }
        }
        long length = new FileInfo(path).Length;
        if (length > int.MaxValue)
            throw new ImatrixFormatException(0, "file", "a legacy imatrix under 2 GiB", $"{length} bytes");
        return ReadLegacy(File.ReadAllBytes(path));
    }

    /// <summary>Parses a legacy <c>.dat</c> imatrix held in memory.</summary>
    public static ImatrixFile ReadLegacy(ReadOnlySpan<byte> bytes)
    {
        var r = new LegacyReader(bytes);
        long countAt = r.Position;
        int nEntries = r.I32("n_entries");
        // Each entry needs at least a name length, ncall, nval and one value: 16 bytes.
        if (nEntries < 1 || nEntries > r.Remaining / 16)
            r.Fail(countAt, "n_entries", $"1 to {r.Remaining / 16} (what the file's size could hold)", nEntries.ToString());

        var entries = new SortedDictionary<string, ImatrixEntry>(StringComparer.Ordinal);
        for (int i = 0; i < nEntries; i++)
        {
            string field = $"entry[{i}]";
            long lenAt = r.Position;
            int len = r.I32($"{field}.name.length");
            if (len < 0 || len > r.Remaining)
                r.Fail(lenAt, $"{field}.name.length", $"0 to {r.Remaining} bytes", len.ToString());
            long nameAt = r.Position;
            string name = r.Utf8(len, $"{field}.name");
            if (name.Contains('\0')) r.Fail(nameAt, $"{field}.name", "a name without NUL bytes", $"'{name.Replace("\0", "\\0")}'");
            if (entries.ContainsKey(name)) r.Fail(nameAt, $"{field}.name", "a name not seen before", $"duplicate entry '{name}'");
            field = $"entry '{name}'";
            long ncallAt = r.Position;
            int ncall = r.I32($"{field}.ncall");
            if (ncall < 0) r.Fail(ncallAt, $"{field}.ncall", "a non-negative call count", ncall.ToString());
            long nvalAt = r.Position;
            int nval = r.I32($"{field}.nval");
            if (nval < 1 || nval > r.Remaining / 4)
                r.Fail(nvalAt, $"{field}.nval", $"1 to {r.Remaining / 4} values (what the file holds after it)", nval.ToString());
            var sums = r.Floats(nval, $"{field}.data");
            entries.Add(name, new ImatrixEntry(name, sums, [ncall]));
        }

        // The trailer (last chunk, then the dataset's name) is optional, but what is there must be whole.
        int chunkCount = 0;
        var datasets = new List<string>();
        if (r.Remaining > 0)
        {
            long at = r.Position;
            chunkCount = r.I32("last_chunk");
            if (chunkCount < 0) r.Fail(at, "last_chunk", "a non-negative chunk count", chunkCount.ToString());
            if (r.Remaining > 0)
            {
                long lenAt = r.Position;
                int dlen = r.I32("dataset.length");
                if (dlen < 0 || dlen > r.Remaining) r.Fail(lenAt, "dataset.length", $"0 to {r.Remaining} bytes", dlen.ToString());
                if (dlen > 0) datasets.Add(r.Utf8(dlen, "dataset"));
            }
            if (r.Remaining > 0)
                r.Fail(r.Position, "end of file", "the end of the file after the dataset name", $"{r.Remaining} more bytes");
        }
        return new ImatrixFile(ImatrixFormat.Legacy, entries, datasets, chunkCount, 0, hasMetadata: false);
    }

    /// <summary>Reads a GGUF imatrix from an open GGUF file (the entries are copied out of the mapping).</summary>
    public static ImatrixFile ReadGguf(GgufFile file)
    {
        if (file.Tensors.Count < 1)
            throw new ImatrixFormatException(file.DataOffset, "tensors", "at least one .in_sum2/.counts pair", "no tensors");

        var datasets = new List<string>();
        var datasetsValue = file.Find(GgufKeys.Imatrix.Datasets);
        if (datasetsValue is not null)
        {
            if (datasetsValue.Value is not GgufArray { ElementType: GgufValueType.String } arr)
                throw new ImatrixFormatException(-1, GgufKeys.Imatrix.Datasets, "an array of strings", datasetsValue.Type.ShortName());
            datasets.AddRange((string[])arr.Items);
        }
        int chunkCount = U32Key(file, GgufKeys.Imatrix.ChunkCount);
        int chunkSize = U32Key(file, GgufKeys.Imatrix.ChunkSize);
        bool hasMetadata = datasetsValue is not null && file.ContainsKey(GgufKeys.Imatrix.ChunkCount) && file.ContainsKey(GgufKeys.Imatrix.ChunkSize);

        const string SumsSuffix = ".in_sum2", CountsSuffix = ".counts", InSumSuffix = ".in_sum";
        var pairs = new SortedDictionary<string, (GgufTensorInfo? Sums, GgufTensorInfo? Counts)>(StringComparer.Ordinal);
        var inSums = new Dictionary<string, GgufTensorInfo>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
        {
            if (t.Name.EndsWith(InSumSuffix, StringComparison.Ordinal))
                inSums[t.Name[..^InSumSuffix.Length]] = t;
            else if (t.Name.EndsWith(SumsSuffix, StringComparison.Ordinal))
            {
                var name = t.Name[..^SumsSuffix.Length];
                pairs[name] = (t, pairs.GetValueOrDefault(name).Counts);
            }
            else if (t.Name.EndsWith(CountsSuffix, StringComparison.Ordinal))
            {
                var name = t.Name[..^CountsSuffix.Length];
                pairs[name] = (pairs.GetValueOrDefault(name).Sums, t);
            }
            // Other tensors (eaddario's .stats) are derived values Squeeze recomputes.
        }
        if (pairs.Count == 0)
            throw new ImatrixFormatException(file.DataOffset, "tensors", "tensors named <weight>.in_sum2 and <weight>.counts", $"{file.Tensors.Count} other tensors");

        var entries = new SortedDictionary<string, ImatrixEntry>(StringComparer.Ordinal);
        foreach (var (name, (sumsInfo, countsInfo)) in pairs)
        {
            if (sumsInfo is null || countsInfo is null)
            {
                var present = (sumsInfo ?? countsInfo)!;
                throw new ImatrixFormatException(file.DataOffset + present.Offset, $"entry '{name}'",
                    $"both {name}{SumsSuffix} and {name}{CountsSuffix}", $"only {present.Name}");
            }
            foreach (var t in new[] { sumsInfo, countsInfo })
                if (t.Type != GgmlType.F32)
                    throw new ImatrixFormatException(file.DataOffset + t.Offset, $"tensor '{t.Name}'.type", "f32", t.Type.Name());
            long nval = sumsInfo.ElementCount, ncounts = countsInfo.ElementCount;
            if (ncounts < 1 || nval < 1 || nval % ncounts != 0)
                throw new ImatrixFormatException(file.DataOffset + countsInfo.Offset, $"tensor '{countsInfo.Name}'",
                    $"one count per matrix of {name}{SumsSuffix} ({nval} values)", $"{ncounts} counts");
            var sums = file.GetTensorData<float>(sumsInfo).ToArray();
            var rawCounts = file.GetTensorData<float>(countsInfo);
            var counts = new long[ncounts];
            for (int j = 0; j < counts.Length; j++)
            {
                float c = rawCounts[j];
                if (!float.IsFinite(c) || c < 0 || c > 9.2e18f)
                    throw new ImatrixFormatException(file.DataOffset + countsInfo.Offset + 4L * j, $"tensor '{countsInfo.Name}'[{j}]",
                        "a finite, non-negative token count", c.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
                counts[j] = (long)MathF.Round(c, MidpointRounding.AwayFromZero); // lround
            }
            float[]? inSum = null;
            if (inSums.Remove(name, out var inSumInfo))
            {
                if (inSumInfo.Type != GgmlType.F32)
                    throw new ImatrixFormatException(file.DataOffset + inSumInfo.Offset, $"tensor '{inSumInfo.Name}'.type", "f32", inSumInfo.Type.Name());
                if (inSumInfo.ElementCount != nval)
                    throw new ImatrixFormatException(file.DataOffset + inSumInfo.Offset, $"tensor '{inSumInfo.Name}'",
                        $"{nval} values (as many as {name}{SumsSuffix})", $"{inSumInfo.ElementCount}");
                inSum = file.GetTensorData<float>(inSumInfo).ToArray();
            }
            entries.Add(name, new ImatrixEntry(name, sums, counts, inSum));
        }
        foreach (var (name, t) in inSums)
            throw new ImatrixFormatException(file.DataOffset + t.Offset, $"entry '{name}'", $"{name}{SumsSuffix} and {name}{CountsSuffix} beside {t.Name}", $"only {t.Name}");
        return new ImatrixFile(ImatrixFormat.Gguf, entries, datasets, chunkCount, chunkSize, hasMetadata,
            LayerImportance.Read(file), ImatrixRunState.Read(file));
    }

    private static int U32Key(GgufFile file, string key)
    {
        var v = file.Find(key);
        if (v is null) return 0;
        if (v.Value is not uint u) throw new ImatrixFormatException(-1, key, "type u32", v.Type.ShortName());
        if (u > int.MaxValue) throw new ImatrixFormatException(-1, key, $"at most {int.MaxValue}", u.ToString());
        return (int)u;
    }

    private static ImatrixFormatException Wrap(GgufFormatException e) => new(e.Offset, e.Field, e.Expected, e.Found, e);

    /// <summary>A bounds-checked little-endian cursor over a legacy file.</summary>
    private ref struct LegacyReader(ReadOnlySpan<byte> bytes)
    {
        private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _pos;

        public readonly long Position => _pos;
        public readonly long Remaining => _bytes.Length - _pos;

        public int I32(string field) => BinaryPrimitives.ReadInt32LittleEndian(Take(4, field));

        public string Utf8(int n, string field)
        {
            long at = _pos;
            var b = Take(n, field);
            try { return StrictUtf8.GetString(b); }
            catch (DecoderFallbackException) { Fail(at, field, "UTF-8 text", "bytes that are not valid UTF-8"); return ""; }
        }

        public float[] Floats(int n, string field)
        {
            var b = Take(checked(n * 4), field);
            var values = new float[n];
            b.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Squeeze needs a little-endian CPU");
            return values;
        }

        private ReadOnlySpan<byte> Take(int n, string field)
        {
            if (n > Remaining) Fail(_pos, field, $"{n} more bytes", $"the end of the file after {Remaining}");
            var s = _bytes.Slice(_pos, n);
            _pos += n;
            return s;
        }

        [System.Diagnostics.CodeAnalysis.DoesNotReturn]
        public readonly void Fail(long offset, string field, string expected, string found) =>
            throw new ImatrixFormatException(offset, field, expected, found);
    }
}
