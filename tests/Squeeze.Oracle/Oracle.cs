using Squeeze.Quants;

namespace Squeeze.Oracle;

/// <summary>Managed helpers over the oracle's entry points, with the argument checks that keep ggml from aborting.</summary>
public static unsafe class Oracle
{
    /// <summary>ggml's quantization of <paramref name="src"/> (<paramref name="nrows"/> rows of <paramref name="nPerRow"/>).</summary>
    public static byte[] Quantize(GgmlType type, ReadOnlySpan<float> src, int nrows, int nPerRow, ReadOnlySpan<float> importance = default)
    {
        OracleLibrary.EnsureLoaded();
        var traits = GgmlTypes.Get(type);
        if (src.Length != (long)nrows * nPerRow) throw new ArgumentException("src length != nrows * nPerRow");
        if (nPerRow % traits.BlockSize != 0) throw new ArgumentException($"row length {nPerRow} is not a multiple of {traits.BlockSize}");
        if (!importance.IsEmpty && importance.Length != nPerRow) throw new ArgumentException("importance length != nPerRow");
        if (importance.IsEmpty && Native.ggml_quantize_requires_imatrix((int)type))
            throw new ArgumentException($"{traits.Name} requires importance weights");
        GuardGridSearchOverflow(type, src, nPerRow);
        var dst = new byte[traits.RowSize(nPerRow) * nrows];
        fixed (float* s = src)
        fixed (float* w = importance)
        fixed (byte* d = dst)
        {
            nuint written = Native.ggml_quantize_chunk((int)type, s, d, 0, nrows, nPerRow, importance.IsEmpty ? null : w);
            if ((long)written != dst.Length) throw new InvalidOperationException($"ggml wrote {written} bytes, expected {dst.Length}");
        }
        return dst;
    }

    /// <summary>
    /// The 1- and 2-bit i-quants search a lattice with squared distances weighted by
    /// <c>sqrt(sum(x^2)/256 + x^2)</c>; when a 256-weight block's sum of squares overflows a float those distances
    /// are all Inf/NaN, and ggml then stops the process in a <c>GGML_ASSERT</c> or <c>GGML_ABORT</c> for many such
    /// rows (checked for IQ2_XXS, IQ2_XS, IQ2_S and IQ1_M with Gaussian rows times 1e30). Refuse those inputs here so
    /// that a test fails instead of killing the test host. This is conservative: ggml survives some of them.
    /// </summary>
    private static void GuardGridSearchOverflow(GgmlType type, ReadOnlySpan<float> src, int nPerRow)
    {
        if (type is not (GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ2_S or GgmlType.IQ1_M)) return;
        for (int b = 0; b + 256 <= src.Length; b += 256)
        {
            float sumx2 = 0;
            for (int i = 0; i < 256; i++) sumx2 += src[b + i] * src[b + i];
            if (!float.IsFinite(sumx2))
                throw new OracleRefusedException($"{GgmlTypes.Get(type).Name}: block at {b} has a sum of squares that overflows a float; ggml's grid search may abort the process on it");
        }
    }

    /// <summary>ggml's <c>to_float</c> of <paramref name="n"/> elements.</summary>
    public static float[] Dequantize(GgmlType type, ReadOnlySpan<byte> src, int n)
    {
        OracleLibrary.EnsureLoaded();
        var traits = GgmlTypes.Get(type);
        if (traits.RowSize(n) != src.Length) throw new ArgumentException("src length does not match n");
        var t = Native.ggml_get_type_traits((int)type);
        if (t->ToFloat == null) throw new NotSupportedException($"ggml has no to_float for {traits.Name}");
        var dst = new float[n];
        fixed (byte* s = src)
        fixed (float* d = dst)
            t->ToFloat(s, d, n);
        return dst;
    }

    /// <summary>ggml-cpu's <c>vec_dot</c> of a row of <paramref name="type"/> with a row of its vec-dot type.</summary>
    public static float VecDot(GgmlType type, ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        OracleLibrary.EnsureLoaded();
        var t = Native.ggml_get_type_traits_cpu((int)type);
        if (t->VecDot == null) throw new NotSupportedException($"ggml has no vec_dot for {type}");
        if (GgmlTypes.RowSize(type, n) != x.Length || GgmlTypes.RowSize((GgmlType)t->VecDotType, n) != y.Length)
            throw new ArgumentException("row sizes do not match n");
        float s;
        fixed (byte* px = x)
        fixed (byte* py = y)
            t->VecDot(n, &s, 0, px, 0, py, 0, 1);
        return s;
    }

    /// <summary>The activation type ggml-cpu pairs with <paramref name="type"/> for dot products.</summary>
    public static GgmlType VecDotType(GgmlType type)
    {
        OracleLibrary.EnsureLoaded();
        return (GgmlType)Native.ggml_get_type_traits_cpu((int)type)->VecDotType;
    }

    /// <summary>ggml-cpu's <c>from_float</c> (quantizing an activation row, e.g. to Q8_K).</summary>
    public static byte[] FromFloat(GgmlType type, ReadOnlySpan<float> src)
    {
        OracleLibrary.EnsureLoaded();
        var t = Native.ggml_get_type_traits_cpu((int)type);
        if (t->FromFloat == null) throw new NotSupportedException($"ggml-cpu has no from_float for {type}");
        var dst = new byte[GgmlTypes.RowSize(type, src.Length)];
        fixed (float* s = src)
        fixed (byte* d = dst)
            t->FromFloat(s, d, src.Length);
        return dst;
    }
}

/// <summary>Thrown instead of calling ggml on inputs it is known to abort the process on.</summary>
public sealed class OracleRefusedException(string message) : Exception(message);
