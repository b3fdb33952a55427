namespace Squeeze.Quants;

/// <summary>
/// The kernels registered for each ggml type, and whole-tensor helpers over them.
/// A format registers itself by adding one line to <see cref="Registered"/>.
/// </summary>
public static class QuantKernels
{
    private static readonly IQuantKernel?[] Table = Build();

    private static IEnumerable<IQuantKernel> Registered()
    {
        yield return new F32Kernel();
        yield return new F16Kernel();
        yield return new BF16Kernel();
        yield return new Q1_0Kernel();
        yield return new Q2_0Kernel();
        yield return new TQ1_0Kernel();
        yield return new TQ2_0Kernel();
        yield return new MXFP4Kernel();
        yield return new NVFP4Kernel();
        yield return Q4_0.Instance;
        yield return Q4_1.Instance;
        yield return Q5_0.Instance;
        yield return Q5_1.Instance;
        yield return Q8_0.Instance;
        yield return Q8_1.Instance;
        yield return Q8_K.Instance;
        yield return Q2_K.Instance;
        yield return Q3_K.Instance;
        yield return Q4_K.Instance;
        yield return Q5_K.Instance;
        yield return Q6_K.Instance;
        yield return new IQ3_XXS();
        yield return new IQ3_S();
        yield return new IQ4_NL();
        yield return new IQ4_XS();
        yield return new IQ2_XXS();
        yield return new IQ2_XS();
        yield return new IQ2_S();
        yield return new IQ1_S();
        yield return new IQ1_M();
    }

    private static IQuantKernel?[] Build()
    {
        var table = new IQuantKernel?[GgmlTypes.Count];
        foreach (var k in Registered())
        {
            if (table[(int)k.Type] is not null) throw new InvalidOperationException($"two kernels registered for {k.Type}");
            table[(int)k.Type] = k;
        }
        return table;
    }

    /// <summary>The kernels of <paramref name="type"/>, or null when Squeeze has none.</summary>
    public static IQuantKernel? Find(GgmlType type) => (uint)type < GgmlTypes.Count ? Table[(int)type] : null;

    /// <summary>The kernels of <paramref name="type"/>; throws <see cref="NotSupportedException"/> when Squeeze has none.</summary>
    public static IQuantKernel Get(GgmlType type) =>
        Find(type) ?? throw new NotSupportedException($"Squeeze has no kernels for {type.Name()}");

    /// <summary>
    /// Quantizes <paramref name="nrows"/> rows of <paramref name="nPerRow"/> floats (ggml's <c>ggml_quantize_chunk</c>);
    /// returns the bytes written.
    /// </summary>
    public static long Quantize(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst, int nrows, int nPerRow, ReadOnlySpan<float> importance = default)
    {
        var kernel = Get(type);
        long rowSize = GgmlTypes.RowSize(type, nPerRow);
        if (src.Length != (long)nrows * nPerRow) throw new ArgumentException($"src has {src.Length} floats, expected {nrows} x {nPerRow}", nameof(src));
        if (dst.Length < rowSize * nrows) throw new ArgumentException($"dst has {dst.Length} bytes, needs {rowSize * nrows}", nameof(dst));
        if (!importance.IsEmpty && importance.Length != nPerRow) throw new ArgumentException($"importance has {importance.Length} weights, expected {nPerRow}", nameof(importance));
        if (importance.IsEmpty && kernel.RequiresImportance) throw new ArgumentException($"{type.Name()} needs importance weights (an imatrix)", nameof(importance));
        for (int r = 0; r < nrows; r++)
            kernel.QuantizeRow(src.Slice(r * nPerRow, nPerRow), dst.Slice((int)(r * rowSize), (int)rowSize), importance);
        return rowSize * nrows;
    }

    /// <summary>Dequantizes a whole number of rows of <paramref name="nPerRow"/> elements.</summary>
    public static void Dequantize(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst, int nPerRow)
    {
        var kernel = Get(type);
        int rowSize = checked((int)GgmlTypes.RowSize(type, nPerRow));
        if (src.Length % rowSize != 0) throw new ArgumentException($"src has {src.Length} bytes, not whole rows of {rowSize}", nameof(src));
        int nrows = src.Length / rowSize;
        if (dst.Length < (long)nrows * nPerRow) throw new ArgumentException($"dst has {dst.Length} floats, needs {nrows * nPerRow}", nameof(dst));
        for (int r = 0; r < nrows; r++)
            kernel.DequantizeRow(src.Slice(r * rowSize, rowSize), dst.Slice(r * nPerRow, nPerRow));
    }
}
