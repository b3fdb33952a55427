using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>
/// The arithmetic of ggml-cpu's repacked matrix products (the CPU_REPACK extra buffer, <c>ggml/src/ggml-cpu/repack.cpp</c>),
/// which llama.cpp uses by default (<c>use_extra_bufts</c>) for weights it can interleave: on x86 with AVX2, Q4_0, Q4_K,
/// IQ4_NL and MXFP4 weights whose row count is a multiple of 8, and Q2_K with AVX-512. ggml copies
/// such a weight into blocks of 8 rows and multiplies it with its own gemv (one activation row) and gemm (four at a
/// time) kernels, whose sums round differently from <c>vec_dot</c>'s. Squeeze leaves the weight where it is, memory-mapped
/// in its stored layout, and reproduces, for each output value, the repacked kernels' arithmetic:
/// <list type="bullet">
/// <item>Activations: the first <c>n - n % 4</c> rows are quantized four at a time (<c>ggml_quantize_mat_q8_0_4x8</c> /
/// <c>_q8_K_4x8</c>), the rest with <c>from_float</c>; the products come out the same either way (see
/// <see cref="QuantizeActivationRow"/>).</item>
/// <item>The grouped rows go through gemm, the rest through gemv. Integer sums are exact, so only the float steps
/// matter: for 32-element formats, per block <c>acc = fma(float(isum), dw * da, acc)</c> in both kernels; for Q4_K, gemv
/// adds one FMA per super-block (the eight scaled sub-block sums, and separately the mins times the group sums,
/// <c>result = acc - accMin</c>), gemm one per pair of sub-blocks (64 values).</item>
/// </list>
/// Every kernel here has a scalar reference; the AVX2 and AVX-512 paths produce the same bits.
/// </summary>
internal static unsafe partial class Repack
{
    /// <summary>Rows ggml interleaves; a weight is repacked only when its row count is a multiple of it.</summary>
    public const int Interleave = 8;

    /// <summary>
    /// Whether llama.cpp, with its default <c>use_extra_bufts</c>, repacks a weight of <paramref name="type"/> with
    /// <paramref name="rows"/> rows on this CPU and Squeeze reproduces that (ggml's <c>ggml_repack_get_optimal_repack_type</c>
    /// for x86: Q4_0, Q4_K, IQ4_NL and MXFP4 need AVX2, Q2_K AVX-512 (llama.cpp's AVX-512 builds), and all
    /// <c>ne[1] % 8 == 0</c>; Q5_K, Q6_K and Q8_0 are repacked only on ARM).
    /// </summary>
    public static bool Applies(GgmlType type, long rows) =>
        rows % Interleave == 0 && Avx2.IsSupported && Fma.IsSupported
        && (type is GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.IQ4_NL or GgmlType.MXFP4 || type == GgmlType.Q2_K && Avx512F.IsSupported);

    /// <summary>
    /// The activation format of a repacked type: its vec-dot type (Q8_K for Q4_K and Q2_K, Q8_0 for the 32-element
    /// formats), so the activations a matmul quantizes for vec_dot serve the repacked kernels too.
    /// </summary>
    public static GgmlType ActivationType(GgmlType type) => QuantKernels.Get(type).VecDotType;

    /// <summary>
    /// Quantizes an activation row for a repacked matmul: ggml's <c>from_float</c> (Q8_0 or Q8_K). ggml quantizes the first
    /// <c>n - n % 4</c> rows with its four-row quantizers instead; for Q8_0 they give the same bytes, and for Q8_K they
    /// differ only in the sign of a super-block's scale when +amax and -amax both occur (<c>_q8_K_4x8</c> takes -127/amax
    /// whenever +amax occurs, the reference -127/max of the first value of largest magnitude). Rounding half to even is
    /// symmetric, so the other sign negates d, every quant and every group sum: each integer sum and each <c>dw * d</c>
    /// product changes sign, and <c>fma(-a, -b, c) = fma(a, b, c)</c>, so the products are bit-identical either way.
    /// </summary>
    public static void QuantizeActivationRow(GgmlType type, ReadOnlySpan<float> x, Span<byte> dst) =>
        QuantKernels.Get(ActivationType(type)).QuantizeActivationRow(x, dst);

    /// <summary>
    /// <c>y[t * yStride + r] = w_r · a_t</c> for weight rows <c>r &lt; rows</c> (a multiple of 8) and activation rows
    /// <c>t0 &lt;= t &lt; t1</c>, as ggml's repacked kernels compute them: rows <c>t &lt; gemmRows</c> in gemm order, the rest in
    /// gemv order. <paramref name="w"/> holds the weight rows in their stored layout, <paramref name="act"/> the activation
    /// rows quantized by <see cref="QuantizeActivationRow"/>.
    /// </summary>
    public static void Multiply(GgmlType type, byte* w, int rowSize, int rows, byte* act, int actRowSize, int t0, int t1, int gemmRows,
        int n, float* y, int yStride)
    {
        if (rows % Interleave != 0) throw new ArgumentException("repacked rows come in groups of 8", nameof(rows));
        if (type == GgmlType.Q4_K)
        {
            if (QuantSimd.UseAvx512) Q4KAvx512(w, rowSize, rows, act, actRowSize, t0, t1, gemmRows, n, y, yStride);
            else if (QuantSimd.UseAvx2) Q4KAvx2(w, rowSize, rows, act, actRowSize, t0, t1, gemmRows, n, y, yStride);
            else Q4KScalar(w, rowSize, rows, act, actRowSize, t0, t1, gemmRows, n, y, yStride);
            return;
        }
        if (type == GgmlType.Q2_K)
        {
            if (QuantSimd.UseAvx512) Q2KAvx512(w, rowSize, rows, act, actRowSize, t0, t1, gemmRows, n, y, yStride);
            else Q2KScalar(w, rowSize, rows, act, actRowSize, t0, t1, gemmRows, n, y, yStride);
            return;
        }
        var table = Nibbles(type);
        if (QuantSimd.UseAvx512) B32Avx512(type, table, w, rowSize, rows, act, actRowSize, t0, t1, n, y, yStride);
        else if (QuantSimd.UseAvx2) B32Avx2(type, table, w, rowSize, rows, act, actRowSize, t0, t1, n, y, yStride);
        else B32Scalar(type, table, w, rowSize, rows, act, actRowSize, t0, t1, n, y, yStride);
    }

    // The signed value of each 4-bit index: Q4_0 subtracts 8, IQ4_NL and MXFP4 look it up (ggml's repack turns them
    // all into table lookups, with the same integer results).
    private static sbyte[] Nibbles(GgmlType type) => type switch
    {
        GgmlType.Q4_0 => Q4_0Values,
        GgmlType.IQ4_NL => Iq4NlValues,
        GgmlType.MXFP4 => Mxfp4Values,
        _ => throw new NotSupportedException($"{type} is not repacked"),
    };

    private static readonly sbyte[] Q4_0Values = [-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7];
    private static readonly sbyte[] Iq4NlValues = Iq4Values.KValues.ToArray();
    private static readonly sbyte[] Mxfp4Values = MXFP4Kernel.KValues.ToArray();

    // The 32-element formats: an fp16 scale (E8M0 for MXFP4) and 16 bytes of nibbles, byte j holding values j and j + 16.
    private static int B32BlockBytes(GgmlType type) => type == GgmlType.MXFP4 ? 17 : 18;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float B32Scale(GgmlType type, byte* block) =>
        type == GgmlType.MXFP4 ? E8M0.ToFloatHalf(block[0]) : F16Kernel.ToFloat(Unsafe.ReadUnaligned<ushort>(block));

    /// <summary>The scalar reference for Q4_0, IQ4_NL and MXFP4: one FMA per 32-value block, in gemv and gemm alike.</summary>
    internal static void B32Scalar(GgmlType type, sbyte[] values, byte* w, int rowSize, int rows, byte* act, int actRowSize, int t0, int t1,
        int n, float* y, int yStride)
    {
        int nb = n / 32, blockBytes = B32BlockBytes(type), qsOffset = blockBytes - 16;
        for (int t = t0; t < t1; t++)
            for (int r = 0; r < rows; r++)
            {
                float acc = 0;
                for (int b = 0; b < nb; b++)
                {
                    byte* xb = w + (long)r * rowSize + b * blockBytes;
                    byte* yb = act + (long)t * actRowSize + b * 34;
                    sbyte* q8 = (sbyte*)(yb + 2);
                    int isum = 0;
                    for (int j = 0; j < 16; j++)
                    {
                        byte q = xb[qsOffset + j];
                        isum += values[q & 0xF] * q8[j] + values[q >> 4] * q8[j + 16];
                    }
                    float dd = B32Scale(type, xb) * F16Kernel.ToFloat(Unsafe.ReadUnaligned<ushort>(yb));
                    acc = MathF.FusedMultiplyAdd(isum, dd, acc);
                }
                y[(long)t * yStride + r] = acc;
            }
    }

    private const int Q4KBlockBytes = 144, Q4KScalesOffset = 4, Q4KQsOffset = 16;

    /// <summary>The scalar reference for Q4_K: gemv rows one FMA per super-block, gemm rows one per 64 values.</summary>
    internal static void Q4KScalar(byte* w, int rowSize, int rows, byte* act, int actRowSize, int t0, int t1, int gemmRows,
        int n, float* y, int yStride)
    {
        int nb = n / Q8_K.QK;
        Span<int> dot = stackalloc int[8], bs = stackalloc int[8];
        Span<byte> sm = stackalloc byte[16];
        for (int t = t0; t < t1; t++)
        {
            bool gemm = t < gemmRows;
            for (int r = 0; r < rows; r++)
            {
                float acc = 0, accMin = 0;
                for (int b = 0; b < nb; b++)
                {
                    byte* xb = w + (long)r * rowSize + b * Q4KBlockBytes;
                    byte* yb = act + (long)t * actRowSize + b * Q8_K.BlockBytes;
                    sbyte* q8 = (sbyte*)(yb + Q8_K.QsOffset);
                    short* bsums = (short*)(yb + Q8_K.BsumsOffset);
                    ScalesAndMins(xb, sm);
                    for (int j = 0; j < 8; j++)
                    {
                        byte* qs = xb + Q4KQsOffset + 32 * (j / 2);
                        int shift = 4 * (j % 2), s = 0;
                        for (int i = 0; i < 32; i++) s += ((qs[i] >> shift) & 0xF) * q8[32 * j + i];
                        dot[j] = s;
                        bs[j] = bsums[2 * j] + bsums[2 * j + 1];
                    }
                    float dy = Unsafe.ReadUnaligned<float>(yb);
                    float dd = F16Kernel.ToFloat(Unsafe.ReadUnaligned<ushort>(xb)) * dy;
                    float ddMin = F16Kernel.ToFloat(Unsafe.ReadUnaligned<ushort>(xb + 2)) * dy;
                    if (gemm)
                    {
                        for (int p = 0; p < 8; p += 2)
                        {
                            acc = MathF.FusedMultiplyAdd(sm[p] * dot[p] + sm[p + 1] * dot[p + 1], dd, acc);
                            accMin = MathF.FusedMultiplyAdd(sm[8 + p] * bs[p] + sm[8 + p + 1] * bs[p + 1], ddMin, accMin);
                        }
                    }
                    else
                    {
                        int isum = 0, imin = 0;
                        for (int j = 0; j < 8; j++)
                        {
                            isum += sm[j] * dot[j];
                            imin += sm[8 + j] * bs[j];
                        }
                        acc = MathF.FusedMultiplyAdd(isum, dd, acc);
                        accMin = MathF.FusedMultiplyAdd(imin, ddMin, accMin);
                    }
                }
                y[(long)t * yStride + r] = acc - accMin;
            }
        }
    }

    // A Q4_K block's eight 6-bit scales (bytes 0-7) and eight mins (bytes 8-15).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScalesAndMins(byte* xb, Span<byte> sm)
    {
        Q4_K.UnpackScalesMins(new ReadOnlySpan<byte>(xb + Q4KScalesOffset, 12), out uint u0, out uint u1, out uint u2, out uint u3);
        MemoryMarshal.Write(sm, u0);
        MemoryMarshal.Write(sm[4..], u1);
        MemoryMarshal.Write(sm[8..], u2);
        MemoryMarshal.Write(sm[12..], u3);
    }
}
