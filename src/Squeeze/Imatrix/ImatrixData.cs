using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Squeeze.Gguf;
using Squeeze.IO;
using Squeeze.Quants;

namespace Squeeze.Imatrix;

/// <summary>
/// One weight's accumulated activations, as llama-imatrix keeps them (<c>struct Stats</c> in tools/imatrix/imatrix.cpp):
/// raw Σx² per input column for each of <see cref="Counts"/>'s matrices (experts), the token count per matrix, and
/// optionally Σx (eaddario's PR #14891 <c>in_sum</c>) for signed statistics. All sums are float, as llama.cpp's are.
/// </summary>
public sealed class ImatrixAccumulator
{
    public ImatrixAccumulator(float[] inSum2, long[] counts, float[]? inSum)
    {
        if (counts.Length == 0 || inSum2.Length % counts.Length != 0)
            throw new ArgumentException($"{inSum2.Length} sums do not split into {counts.Length} matrices");
        if (inSum is not null && inSum.Length != inSum2.Length) throw new ArgumentException("Σx and Σx² differ in length");
        InSum2 = inSum2;
        Counts = counts;
        InSum = inSum;
    }

    /// <summary>Σx² per column, <c>columns × matrices</c>.</summary>
    public float[] InSum2 { get; internal set; }

    /// <summary>Σx per column, or null when any contribution lacked it (then signed statistics are unavailable).</summary>
    public float[]? InSum { get; internal set; }

    /// <summary>Tokens per matrix (one entry for dense weights, one per expert for MoE weights).</summary>
    public long[] Counts { get; internal set; }

    public int Matrices => Counts.Length;
    public int Columns => InSum2.Length / Counts.Length;

    public ImatrixAccumulator Clone() => new(InSum2.ToArray(), Counts.ToArray(), InSum?.ToArray());
}

/// <summary>
/// An imatrix being built or merged: the accumulators by weight name, the datasets, the chunk bookkeeping and
/// Squeeze's layer-importance scores. Writes both of llama.cpp's formats byte for byte as llama-imatrix writes them
/// (<c>save_imatrix</c> and <c>save_imatrix_legacy</c> at 815a2a591), and merges files as its <c>load_imatrix</c> does.
/// </summary>
public sealed class ImatrixData
{
    /// <param name="chunkSize">Tokens per chunk (<c>n_ctx / n_parallel</c>); turns legacy call counts back into token counts.</param>
    public ImatrixData(int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        ChunkSize = chunkSize;
    }

    /// <summary>The accumulators, by weight name.</summary>
    public SortedDictionary<string, ImatrixAccumulator> Entries { get; } = new(StringComparer.Ordinal);

    /// <summary>The datasets of the imatrices merged in (llama.cpp's <c>m_datasets</c>).</summary>
    public List<string> Datasets { get; } = [];

    /// <summary>This run's calibration file (llama.cpp's <c>prompt_file</c>), or null when only merging.</summary>
    public string? Dataset { get; set; }

    public int ChunkSize { get; }

    /// <summary>llama.cpp's <c>m_last_chunk</c>: the largest token count of any matrix divided by the chunk size.</summary>
    public int ChunkCount { get; set; }

    /// <summary>Per-layer importance scores, when collected or merged in.</summary>
    public LayerImportance? LayerImportance { get; set; }

    /// <summary>Resume information written with the GGUF file, when set.</summary>
    public ImatrixRunState? RunState { get; set; }

    /// <summary>All datasets as the GGUF writer lists them: the merged ones, then this run's.</summary>
    public IReadOnlyList<string> AllDatasets => Dataset is { Length: > 0 } d ? [.. Datasets, d] : Datasets;

    /// <summary>Recomputes <see cref="ChunkCount"/> from the counts, as llama.cpp does after loading.</summary>
    public void UpdateChunkCount()
    {
        long max = 0;
        foreach (var e in Entries.Values)
            foreach (var c in e.Counts) max = Math.Max(max, c);
        ChunkCount = checked((int)(max / ChunkSize));
    }

    /// <summary>A deep copy (for snapshots taken while collecting goes on).</summary>
    public ImatrixData Clone()
    {
        var c = new ImatrixData(ChunkSize) { Dataset = Dataset, ChunkCount = ChunkCount, LayerImportance = LayerImportance?.Clone(), RunState = RunState };
        c.Datasets.AddRange(Datasets);
        foreach (var (k, v) in Entries) c.Entries.Add(k, v.Clone());
        return c;
    }

    /// <summary>
    /// Adds a read imatrix file as llama-imatrix's <c>--in-file</c> does: GGUF sums and counts are added (a single count
    /// broadcast over experts); a legacy entry's stored means times <c>ncall</c> become sums of <c>data × chunk_size</c>
    /// over <c>ncall × chunk_size</c> tokens. Σx survives only while every contribution has it. The datasets are appended
    /// and the chunk count recomputed.
    /// </summary>
    /// <exception cref="InvalidInputException">An entry's size differs from what is already there.</exception>
    public void Merge(ImatrixFile file)
    {
        foreach (var (name, entry) in file.Entries)
        {
            Entries.TryGetValue(name, out var e);
            if (file.Format == ImatrixFormat.Legacy)
            {
                if (e is null)
                {
                    e = new ImatrixAccumulator(new float[entry.Sums.Length], [0], null);
                    Entries.Add(name, e);
                }
                else if (e.InSum2.Length != entry.Sums.Length)
                    throw new InvalidInputException($"cannot merge '{name}': {entry.Sums.Length} values, {e.InSum2.Length} already there");
                e.InSum = null; // a legacy file holds no Σx
                for (int j = 0; j < entry.Sums.Length; j++) e.InSum2[j] += entry.Sums[j] * ChunkSize;
                for (int j = 0; j < e.Counts.Length; j++) e.Counts[j] += entry.Counts[0] * ChunkSize;
                continue;
            }

            int nval = entry.Sums.Length, ncounts = entry.Counts.Length;
            if (e is null)
            {
                e = new ImatrixAccumulator(new float[nval], new long[ncounts], entry.InSum is null ? null : new float[nval]);
                Entries.Add(name, e);
            }
            else
            {
                if (e.InSum2.Length != nval)
                    throw new InvalidInputException($"cannot merge '{name}': {nval} sums, {e.InSum2.Length} already there");
                if (e.Counts.Length == 1 && ncounts > 1) e.Counts = Enumerable.Repeat(e.Counts[0], ncounts).ToArray();
                else if (e.Counts.Length != ncounts)
                    throw new InvalidInputException($"cannot merge '{name}': {ncounts} counts, {e.Counts.Length} already there");
                if (entry.InSum is null) e.InSum = null;
            }
            for (int j = 0; j < nval; j++) e.InSum2[j] += entry.Sums[j];
            for (int j = 0; j < ncounts; j++) e.Counts[j] += entry.Counts[j];
            if (e.InSum is not null && entry.InSum is not null)
                for (int j = 0; j < nval; j++) e.InSum[j] += entry.InSum[j];
        }
        Datasets.AddRange(file.Datasets);
        if (file.LayerImportance is { } li)
        {
            if (LayerImportance is null) LayerImportance = li.Clone();
            else LayerImportance.Merge(li);
        }
        UpdateChunkCount();
    }

    /// <summary>Writes <paramref name="path"/> atomically in <paramref name="format"/>.</summary>
    public void Write(string path, ImatrixFormat format)
    {
        if (format == ImatrixFormat.Gguf) WriteGguf(path);
        else WriteLegacy(path);
    }

    /// <summary>
    /// The GGUF imatrix as llama-imatrix writes it: <c>general.type</c>, <c>imatrix.datasets</c>, <c>imatrix.chunk_count</c>,
    /// <c>imatrix.chunk_size</c> (then Squeeze's layer-importance and run keys, when present); per weight in name order
    /// <c>.in_sum2</c> <c>[columns, matrices]</c> and <c>.counts</c> <c>[1, matrices]</c> as F32 (trailing dimensions of 1
    /// dropped, as gguf.cpp writes them), then <c>.in_sum</c> when Σx was kept (PR #14891's order).
    /// </summary>
    public GgufWriter ToGguf()
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Type, GgufValue.String("imatrix"));
        w.Set(GgufKeys.Imatrix.Datasets, GgufValue.Strings(AllDatasets));
        w.Set(GgufKeys.Imatrix.ChunkCount, GgufValue.UInt32((uint)ChunkCount));
        w.Set(GgufKeys.Imatrix.ChunkSize, GgufValue.UInt32((uint)ChunkSize));
        if (LayerImportance is { } li) li.WriteTo(w);
        RunState?.WriteTo(w);
        foreach (var (name, e) in Entries)
        {
            int nmat = e.Counts.Length, ncol = e.Columns;
            if (e.InSum2.Length == 0 || nmat == 0) continue;
            w.AddTensor(name + ".in_sum2", GgmlType.F32, Shape(ncol, nmat), Bytes(e.InSum2));
            var counts = new float[nmat];
            for (int j = 0; j < nmat; j++) counts[j] = e.Counts[j];
            w.AddTensor(name + ".counts", GgmlType.F32, Shape(1, nmat), Bytes(counts));
            if (e.InSum is not null) w.AddTensor(name + ".in_sum", GgmlType.F32, Shape(ncol, nmat), Bytes(e.InSum));
        }
        return w;
    }

    /// <summary>Writes the GGUF imatrix atomically.</summary>
    public void WriteGguf(string path) => ToGguf().WriteTo(path);

    /// <summary>
    /// The legacy <c>.dat</c> as <c>save_imatrix_legacy</c> writes it: entries with data (a weight whose every matrix has
    /// count 0 is left out) in name order; <c>ncall = ceil(max count / chunk size)</c>; values <c>(Σx² / count) × ncall</c>,
    /// with 1 × ncall for matrices never exercised; then the chunk count and the dataset (this run's, else the last merged).
    /// </summary>
    public byte[] ToLegacyBytes()
    {
        var ms = new MemoryStream();
        var b = new byte[4];
        void I32(int v) { BinaryPrimitives.WriteInt32LittleEndian(b, v); ms.Write(b); }
        var stored = Entries.Where(kv => kv.Value.Counts.Length > 0 && kv.Value.Counts.Any(c => c != 0)).ToList();
        I32(stored.Count);
        foreach (var (name, e) in stored)
        {
            var nameBytes = Encoding.UTF8.GetBytes(name);
            I32(nameBytes.Length);
            ms.Write(nameBytes);
            long maxCount = e.Counts.Max();
            int ncall = checked((int)((maxCount + (ChunkSize - 1)) / ChunkSize));
            I32(ncall);
            int nval = e.InSum2.Length, nmat = e.Counts.Length;
            I32(nval);
            var tmp = new float[nval];
            for (int i = 0; i < nval; i++)
            {
                float count = e.Counts[i / (nval / nmat)];
                float value = e.InSum2[i];
                if (count == 0f) { value = 1f; count = 1f; }
                tmp[i] = value / count * ncall;
            }
            ms.Write(MemoryMarshal.AsBytes(tmp.AsSpan()));
        }
        I32(ChunkCount);
        string dataset = Dataset is { Length: > 0 } d ? d : Datasets.Count > 0 ? Datasets[^1] : "";
        var ds = Encoding.UTF8.GetBytes(dataset);
        I32(ds.Length);
        ms.Write(ds);
        return ms.ToArray();
    }

    /// <summary>Writes the legacy imatrix atomically.</summary>
    public void WriteLegacy(string path)
    {
        var bytes = ToLegacyBytes();
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>The names of entries some of whose matrices (experts) were never exercised.</summary>
    public IEnumerable<string> PartialEntries => Entries.Where(kv => kv.Value.Counts.Any(c => c == 0)).Select(kv => kv.Key);

    private static long[] Shape(long ne0, long ne1) => ne1 == 1 ? [ne0] : [ne0, ne1];

    private static byte[] Bytes(float[] values) => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
}
