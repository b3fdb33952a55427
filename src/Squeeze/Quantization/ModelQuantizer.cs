using System.Buffers;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Quantization;

/// <summary>Options of <see cref="ModelQuantizer"/>.</summary>
public sealed record QuantizeOptions
{
    /// <summary>Importance weights, or null.</summary>
    public ImportanceMatrix? Imatrix { get; init; }

    /// <summary>Worker threads (at least 1; default: every core).</summary>
    public int Threads { get; init; } = Workers.DefaultThreads;

    /// <summary>Whether tensors already quantized may be dequantized and quantized again (llama-quantize's <c>--allow-requantize</c>).</summary>
    public bool AllowRequantize { get; init; }
}

/// <summary>Where a quantization is: reported after every slice of rows.</summary>
/// <param name="TensorIndex">0-based index of the tensor being written.</param>
/// <param name="TensorCount">Tensors in the model.</param>
/// <param name="TensorName">The tensor being written.</param>
/// <param name="TargetType">Its output type.</param>
/// <param name="ElementsDone">Elements written so far, over the whole model.</param>
/// <param name="ElementsTotal">Elements in the model.</param>
public readonly record struct QuantizeProgress(int TensorIndex, int TensorCount, string TensorName, GgmlType TargetType, long ElementsDone, long ElementsTotal)
{
    public double Fraction => ElementsTotal == 0 ? 1 : (double)ElementsDone / ElementsTotal;
}

/// <summary>What one tensor became.</summary>
public sealed record TensorResult(string Name, IReadOnlyList<long> Shape, GgmlType SourceType, GgmlType TargetType, long InputBytes, long OutputBytes, string Reason, bool UsedImatrix);

/// <summary>Per output type: how many tensors, elements and bytes.</summary>
public sealed record TypeTotals(GgmlType Type, int Tensors, long Elements, long Bytes)
{
    public double BitsPerWeight => Elements == 0 ? 0 : Bytes * 8.0 / Elements;
}

/// <summary>The outcome of a quantization.</summary>
public sealed record QuantizeSummary(
    string OutputPath,
    LlamaFileType FileType,
    IReadOnlyList<TensorResult> Tensors,
    long Elements,
    long InputTensorBytes,
    long OutputTensorBytes,
    long OutputFileBytes,
    int FallbackCount,
    TimeSpan Elapsed)
{
    /// <summary>Bits per weight of the output's tensor data, counted as llama-quantize counts it (all tensors).</summary>
    public double BitsPerWeight => Elements == 0 ? 0 : OutputTensorBytes * 8.0 / Elements;

    /// <summary>Bits per weight of the input.</summary>
    public double InputBitsPerWeight => Elements == 0 ? 0 : InputTensorBytes * 8.0 / Elements;

    /// <summary>Totals per output type, most bytes first.</summary>
    public IReadOnlyList<TypeTotals> ByType =>
        Tensors.GroupBy(t => t.TargetType)
            .Select(g => new TypeTotals(g.Key, g.Count(), g.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)), g.Sum(t => t.OutputBytes)))
            .OrderByDescending(t => t.Bytes).ToList();
}

/// <summary>
/// Quantizes a GGUF model as llama.cpp's <c>llama_model_quantize</c> does, streaming: the input stays memory-mapped,
/// the output is written tensor by tensor (atomically: a temporary file renamed when whole), and each tensor's rows
/// are converted to float and quantized in parallel, a slice at a time, so memory stays at a few slices.
/// The metadata is the input's, with <c>general.quantization_version</c> and <c>general.file_type</c> set (u32, moved
/// to the end as gguf does), split keys removed, and the <c>quantize.imatrix.*</c> keys llama-quantize adds.
/// </summary>
public static class ModelQuantizer
{
    /// <summary>ggml's <c>GGML_QNT_VERSION</c> at 815a2a591.</summary>
    public const uint QuantizationVersion = 2;

    /// <summary>llama-quantize copies at most this many bytes of a string into a metadata override (<c>char[128]</c>).</summary>
    public const int MaxOverrideStringBytes = 127;

    /// <summary>Elements converted per slice of a tensor (bounds memory: about 4 bytes in, up to 4 out, per element).</summary>
    private const long SliceElements = 1 << 24;

    /// <summary>Rows a worker takes at once: at least llama.cpp's minimum chunk of 32 × 512 elements.</summary>
    private const long ChunkElements = 32 * 512;

    /// <summary>Quantizes <paramref name="inputPath"/> to <paramref name="outputPath"/> under <c>--pure</c>.</summary>
    public static QuantizeSummary QuantizePure(string inputPath, string outputPath, QuantizeTarget target, QuantizeOptions options,
        IProgress<QuantizeProgress>? progress = null, CancellationToken cancellation = default)
    {
        using var input = GgufFile.Open(inputPath);
        var plan = QuantizationPlan.Pure(input, target);
        return Quantize(input, plan, outputPath, options, progress, cancellation);
    }

    /// <summary>Carries out <paramref name="plan"/> on <paramref name="input"/>, writing <paramref name="outputPath"/>.</summary>
    /// <exception cref="QuantizationException">A tensor cannot be quantized as planned (NaN/Inf, missing kernels, imatrix problems).</exception>
    public static QuantizeSummary Quantize(GgufFile input, QuantizationPlan plan, string outputPath, QuantizeOptions options,
        IProgress<QuantizeProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Threads, 1, nameof(options.Threads));
        var clock = Stopwatch.StartNew();
        if (input.Path is not null && Path.GetFullPath(input.Path) == Path.GetFullPath(outputPath))
            throw new QuantizationException($"the input and output are the same file: '{outputPath}'");
        var importance = Prepare(plan, options);

        var writer = new GgufWriter(3);
        foreach (var kv in input.Metadata) writer.Set(kv.Key, kv.Value);
        SetAtEnd(writer, GgufKeys.General.QuantizationVersion, GgufValue.UInt32(QuantizationVersion));
        SetAtEnd(writer, GgufKeys.General.FileType, GgufValue.UInt32((uint)plan.FileType));
        writer.Remove(GgufKeys.Split.Index);
        writer.Remove(GgufKeys.Split.Count);
        writer.Remove(GgufKeys.Split.TensorsCount);
        // llama-quantize passes the user's --override-kv first, then the imatrix keys, all as overrides.
        foreach (var o in plan.MetadataOverrides)
        {
            o.Validate();
            SetAtEnd(writer, o.Key, o.Value);
        }
        if (ActiveImatrix(options) is { } im)
        {
            SetAtEnd(writer, GgufKeys.Quantize.ImatrixFile, GgufValue.String(Truncate(im.FileName)));
            if (im.Datasets.Count > 0) SetAtEnd(writer, GgufKeys.Quantize.ImatrixDataset, GgufValue.String(Truncate(im.Datasets[0])));
            SetAtEnd(writer, GgufKeys.Quantize.ImatrixEntriesCount, GgufValue.UInt32((uint)im.EntryCount));
            if (im.ChunkCount > 0) SetAtEnd(writer, GgufKeys.Quantize.ImatrixChunksCount, GgufValue.UInt32((uint)im.ChunkCount));
        }
        if (plan.BlockCount is { } bc) SetAtEnd(writer, bc.Key, GgufValue.UInt32(bc.Value));

        long total = plan.Tensors.Sum(t => t.Tensor.ElementCount);
        long done = 0;
        var results = new List<TensorResult>(plan.Tensors.Count);
        for (int i = 0; i < plan.Tensors.Count; i++)
        {
            var tp = plan.Tensors[i];
            int index = i;
            // gguf.cpp writes ggml's dimension count, dropping trailing dimensions of 1 ([4096, 1] becomes [4096]).
            var shape = tp.Tensor.Shape.Take(QuantizableTensors.EffectiveDimensions(tp.Tensor.Shape)).ToArray();
            writer.AddTensor(tp.Name, tp.TargetType, shape, stream =>
            {
                void Report(long elements)
                {
                    progress?.Report(new QuantizeProgress(index, plan.Tensors.Count, tp.Name, tp.TargetType, done + elements, total));
                }
                Report(0);
                if (tp.Converts) Convert(input, tp, importance[index], stream, options, Report, cancellation);
                else Copy(input, tp.Tensor, stream, Report, cancellation);
                done += tp.Tensor.ElementCount;
                results.Add(new TensorResult(tp.Name, tp.Tensor.Shape, tp.Tensor.Type, tp.TargetType, tp.Tensor.ByteSize, tp.OutputBytes,
                    tp.Reason, importance[index] is not null));
            });
        }
        long fileBytes = writer.WriteTo(outputPath);
        return new QuantizeSummary(outputPath, plan.FileType, results, total,
            plan.Tensors.Sum(t => t.Tensor.ByteSize), plan.Tensors.Sum(t => t.OutputBytes), fileBytes, plan.FallbackCount, clock.Elapsed);
    }

    /// <summary>
    /// Checks everything that can be checked before writing: kernels exist, source types can be read, imatrix entries
    /// fit their tensors, tensors that need an imatrix have one. Returns each tensor's importance weights (or null).
    /// </summary>
    private static float[]?[] Prepare(QuantizationPlan plan, QuantizeOptions options)
    {
        var importance = new float[]?[plan.Tensors.Count];
        var imatrix = ActiveImatrix(options);
        // First what llama.cpp checks: without an imatrix, no tensor may need one (even one that keeps its type)...
        if (imatrix is null && plan.Tensors.FirstOrDefault(t => t.RequiresImatrix) is { } needy)
            throw MissingImportance(needy, options);
        // ...then, tensor by tensor, the imatrix against the model.
        for (int i = 0; i < plan.Tensors.Count; i++)
        {
            var tp = plan.Tensors[i];
            if (!tp.Converts) continue;
            var t = tp.Tensor;
            float[]? w = null;
            // The input's name: with pruned layers the imatrix still names the original blocks.
            if (imatrix is { } im && im.Find(t.Name) is { } found)
            {
                if (im.Fits(t, out int size, out long expected)) w = found;
                // llama.cpp tolerates a token-embedding entry of the wrong size (it "always" mismatches) and quantizes without it.
                else if (!ImatrixRequirement.TokenEmbeddingNames.Contains(t.Name))
                    throw new QuantizationException(
                        $"tensor '{t.Name}': the imatrix entry has {size} values, the tensor needs {expected} (ne[0] x ne[2]); was the imatrix made for another model?", t.Name);
            }
            if (w is null && tp.RequiresImatrix)
                throw MissingImportance(tp, options);
            importance[i] = w;
        }
        // Then what Squeeze itself can do.
        for (int i = 0; i < plan.Tensors.Count; i++)
        {
            var tp = plan.Tensors[i];
            if (!tp.Converts) continue;
            var t = tp.Tensor;
            var kernel = QuantKernels.Find(tp.TargetType)
                ?? throw new QuantizationException($"tensor '{t.Name}': Squeeze has no kernels for {tp.TargetType.Name()} yet", t.Name);
            if (!IsFloat(t.Type))
            {
                if (!GgmlTypes.Get(t.Type).IsQuantized || QuantKernels.Find(t.Type) is null)
                    throw new QuantizationException($"tensor '{t.Name}': cannot convert from {t.Type.Name()}", t.Name);
                if (!options.AllowRequantize)
                    throw new QuantizationException($"tensor '{t.Name}' is already {t.Type.Name()}: requantizing loses quality; allow it explicitly", t.Name);
            }
            if (t.RowCount > 0 && t.Shape[0] > int.MaxValue / 4)
                throw new QuantizationException($"tensor '{t.Name}': rows of {t.Shape[0]} elements are too long", t.Name);
            if (importance[i] is null && kernel.RequiresImportance)
                throw MissingImportance(tp, options);
        }
        return importance;
    }

    /// <summary>The imatrix, unless it has no entries (llama-quantize then passes none, and writes no imatrix keys).</summary>
    private static ImportanceMatrix? ActiveImatrix(QuantizeOptions options) => options.Imatrix is { EntryCount: > 0 } im ? im : null;

    private static QuantizationException MissingImportance(TensorPlan tp, QuantizeOptions options) => new(ActiveImatrix(options) is null
        ? $"tensor '{tp.Tensor.Name}': quantizing to {tp.TargetType.Name()} requires an importance matrix (--imatrix)"
        : $"tensor '{tp.Tensor.Name}': quantizing to {tp.TargetType.Name()} requires importance weights, and the imatrix has none for it", tp.Tensor.Name);

    private static bool IsFloat(GgmlType t) => t is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16;

    private static void SetAtEnd(GgufWriter w, string key, GgufValue value)
    {
        w.Remove(key);
        w.Set(key, value);
    }

    /// <summary>llama-quantize passes strings through a 128-byte buffer; keep whole UTF-8 characters.</summary>
    private static string Truncate(string s)
    {
        if (Encoding.UTF8.GetByteCount(s) <= MaxOverrideStringBytes) return s;
        int n = s.Length;
        while (n > 0 && Encoding.UTF8.GetByteCount(s.AsSpan(0, n)) > MaxOverrideStringBytes) n--;
        if (n > 0 && char.IsHighSurrogate(s[n - 1])) n--;
        return s[..n];
    }

    /// <summary>Copies a tensor's bytes, refusing NaN/Inf in float tensors as llama.cpp's loader does.</summary>
    private static unsafe void Copy(GgufFile input, GgufTensorInfo t, Stream stream, Action<long> report, CancellationToken cancellation)
    {
        long rows = t.RowCount, n = t.Shape[0];
        if (rows == 0) return;
        long rowBytes = t.RowSize;
        long sliceRows = Math.Max(1, Math.Min(rows, SliceElements / Math.Max(1, n)));
        byte* p = input.GetTensorPointer(t);
        for (long r0 = 0; r0 < rows; r0 += sliceRows)
        {
            cancellation.ThrowIfCancellationRequested();
            int count = (int)Math.Min(sliceRows, rows - r0);
            if (IsFloat(t.Type))
                for (int r = 0; r < count; r++)
                    if (FirstNonFinite(t.Type, p + (r0 + r) * rowBytes, (int)n) is int col and >= 0)
                        throw NonFinite(t, r0 + r, col);
            long bytes = rowBytes * count;
            for (long off = 0; off < bytes; off += int.MaxValue)
                stream.Write(new ReadOnlySpan<byte>(p + r0 * rowBytes + off, (int)Math.Min(int.MaxValue, bytes - off)));
            Squeeze.IO.MappedPages.Release(p + r0 * rowBytes, bytes);
            report((r0 + count) * n);
        }
    }

    private static unsafe void Convert(GgufFile input, TensorPlan tp, float[]? importance, Stream stream, QuantizeOptions options,
        Action<long> report, CancellationToken cancellation)
    {
        var t = tp.Tensor;
        long rows = t.RowCount;
        if (rows == 0) return;
        int n = (int)t.Shape[0];
        long rowsPerMatrix = t.Shape.Count > 1 ? t.Shape[1] : 1;
        long experts = t.Shape.Count > 2 ? t.Shape[2] : 1;
        var kernel = QuantKernels.Get(tp.TargetType);
        var sourceKernel = IsFloat(t.Type) ? null : QuantKernels.Get(t.Type);
        int outRow = (int)GgmlTypes.RowSize(tp.TargetType, n);
        long inRow = t.RowSize;
        byte* src = input.GetTensorPointer(t);

        int chunkRows = (int)Math.Max(1, Math.Min(rows, (ChunkElements + n - 1) / n));
        int sliceRows = (int)Math.Max(chunkRows, Math.Min(rows, SliceElements / n / chunkRows * chunkRows));
        var output = ArrayPool<byte>.Shared.Rent(checked(sliceRows * outRow));
        try
        {
            for (long r0 = 0; r0 < rows; r0 += sliceRows)
            {
                cancellation.ThrowIfCancellationRequested();
                int count = (int)Math.Min(sliceRows, rows - r0);
                int chunks = (count + chunkRows - 1) / chunkRows;
                long badRow = long.MaxValue;
                int badCol = -1;
                var gate = new object();
                var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.Threads, CancellationToken = cancellation };
                Parallel.For(0, chunks, parallel, () => new float[(long)chunkRows * n], (c, _, buffer) =>
                {
                    int first = c * chunkRows, last = Math.Min(count, first + chunkRows);
                    for (int r = first; r < last; r++)
                    {
                        long row = r0 + r;
                        var x = buffer.AsSpan((r - first) * n, n);
                        byte* rowPtr = src + row * inRow;
                        ToFloat(t.Type, sourceKernel, rowPtr, (int)inRow, x);
                        if (FirstNonFinite(x) is int col and >= 0)
                        {
                            lock (gate) if (row < badRow) { badRow = row; badCol = col; }
                            return buffer;
                        }
                        ReadOnlySpan<float> w = importance is null
                            ? default
                            : importance.AsSpan((int)(row / rowsPerMatrix % experts * n), n);
                        kernel.QuantizeRow(x, output.AsSpan(r * outRow, outRow), w);
                    }
                    return buffer;
                }, _ => { });
                if (badRow != long.MaxValue) throw NonFinite(t, badRow, badCol);
                // The input rows are done with: keep resident memory at a slice, whatever the model's size.
                Squeeze.IO.MappedPages.Release(src + r0 * inRow, count * inRow);
                stream.Write(output, 0, count * outRow);
                report((r0 + count) * n);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(output);
        }
    }

    private static unsafe void ToFloat(GgmlType type, IQuantKernel? kernel, byte* row, int bytes, Span<float> x)
    {
        switch (type)
        {
            case GgmlType.F32:
                new ReadOnlySpan<float>(row, x.Length).CopyTo(x);
                break;
            case GgmlType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(row, x.Length), x);
                break;
            case GgmlType.BF16:
                var h = new ReadOnlySpan<ushort>(row, x.Length);
                for (int i = 0; i < x.Length; i++) x[i] = Bf16.ToFloat(h[i]);
                break;
            default:
                kernel!.DequantizeRow(new ReadOnlySpan<byte>(row, bytes), x);
                break;
        }
    }

    private static unsafe int FirstNonFinite(GgmlType type, byte* row, int n)
    {
        switch (type)
        {
            case GgmlType.F32: return FirstNonFinite(new ReadOnlySpan<float>(row, n));
            default:
                // fp16 and bf16: exponent all ones means Inf or NaN.
                var h = new ReadOnlySpan<ushort>(row, n);
                ushort mask = type == GgmlType.F16 ? (ushort)0x7C00 : (ushort)0x7F80;
                for (int i = 0; i < h.Length; i++)
                    if ((h[i] & mask) == mask) return i;
                return -1;
        }
    }

    /// <summary>Index of the first NaN or infinity in <paramref name="x"/>, or -1.</summary>
    internal static int FirstNonFinite(ReadOnlySpan<float> x)
    {
        var bits = MemoryMarshal.Cast<float, uint>(x);
        int i = 0;
        if (Vector.IsHardwareAccelerated && bits.Length >= Vector<uint>.Count)
        {
            var exp = new Vector<uint>(0x7F800000u);
            for (; i <= bits.Length - Vector<uint>.Count; i += Vector<uint>.Count)
                if (Vector.EqualsAny(new Vector<uint>(bits.Slice(i)) & exp, exp)) break;
        }
        for (; i < bits.Length; i++)
            if ((bits[i] & 0x7F800000u) == 0x7F800000u) return i;
        return -1;
    }

    private static QuantizationException NonFinite(GgufTensorInfo t, long row, int col) =>
        new($"tensor '{t.Name}' holds NaN or Inf at row {row}, column {col}: the model is broken; refusing to quantize it", t.Name, row);
}
