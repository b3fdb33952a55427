using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Squeeze.Numerics.GgmlRounding;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q2_K (ggml block_q2_K): super-blocks of 256 weights in 16 groups of 16, 84 bytes.
//   offset  0  scales  16 bytes   per group: low nibble = scale level, high nibble = min level
//   offset 16  qs      64 bytes   2-bit quants: byte 32c + b holds element 128c + 32p + b at bits 2p..2p+1
//   offset 80  d        2 bytes   fp16 super-scale of the scale levels
//   offset 82  dmin     2 bytes   fp16 super-scale of the min levels
// weight = d * (scales & 0xF) * q - dmin * (scales >> 4)

/// <summary>Kernels of <see cref="GgmlType.Q2_K"/>: 2-bit k-quant super-blocks, dot products against Q8_K.</summary>
public sealed partial class Q2_K : IQuantKernel
{
    /// <summary>Elements per super-block (ggml's <c>QK_K</c>).</summary>
    public const int QK = GgmlTypes.QK_K;
    /// <summary>Bytes per super-block.</summary>
    public const int BlockBytes = 84;
    private const int ScalesOffset = 0, QsOffset = 16, DOffset = 80, DminOffset = 82;

    /// <summary>The shared instance.</summary>
    public static readonly Q2_K Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q2_K;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_K;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_q2_K</c> for one row: the reference path without importance, the weighted search with it.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) QuantizeRowRef(src, dst);
        else QuantizeRowImpl(src, dst, importance);
    }

    /// <summary>
    /// ggml's <c>quantize_row_q2_K_ref</c>: per group of 16 a scale and min by <c>make_qkx2_quants</c> (weights |x|,
    /// absolute error), both quantized to 4 bits against their largest value, then every group requantized.
    /// </summary>
    public static void QuantizeRowRef(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(src.Length, QK, BlockBytes, src.Length, dst.Length, "q2_K");
        Span<byte> L = stackalloc byte[QK];
        Span<byte> Laux = stackalloc byte[16];
        Span<float> weights = stackalloc float[16];
        Span<float> mins = stackalloc float[QK / 16];
        Span<float> scales = stackalloc float[QK / 16];
        const float q4scale = 15f;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < QK / 16; ++j)
            {
                for (int l = 0; l < 16; ++l) weights[l] = MathF.Abs(x[16 * j + l]);
                scales[j] = ScaleSearch.MakeQkx2Quants(16, 3, x.Slice(16 * j, 16), weights, L.Slice(16 * j, 16), out mins[j], Laux, -0.5f, 0.1f, 15, true);
                float scale = scales[j];
                if (scale > maxScale) maxScale = scale;
                float min = mins[j];
                if (min > maxMin) maxMin = min;
            }
            var sc = y.Slice(ScalesOffset, 16);
            if (maxScale > 0)
            {
                float iscale = q4scale / maxScale;
                for (int j = 0; j < QK / 16; ++j) sc[j] = (byte)NearestInt(iscale * scales[j]);
                SetHalf(y, DOffset, maxScale / q4scale);
            }
            else
            {
                sc.Clear();
                SetHalf(y, DOffset, 0f);
            }
            if (maxMin > 0)
            {
                float iscale = q4scale / maxMin;
                for (int j = 0; j < QK / 16; ++j) sc[j] |= (byte)(NearestInt(iscale * mins[j]) << 4);
                SetHalf(y, DminOffset, maxMin / q4scale);
            }
            else
            {
                SetHalf(y, DminOffset, 0f);
            }
            Requantize(x, y, L);
            Pack(L, y);
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_q2_K_impl</c>: weights qw·sqrt(σ² + x²) with σ² the super-block's mean square,
    /// <c>make_qkx3_quants</c> per group, and the group scales and mins quantized by <c>make_qp_quants</c>.
    /// </summary>
    public static void QuantizeRowImpl(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> quantWeights)
    {
        int nb = Blocks(src.Length, QK, BlockBytes, src.Length, dst.Length, "q2_K");
        if (quantWeights.Length < src.Length) throw new ArgumentException("q2_K: importance shorter than the row");
        Span<byte> L = stackalloc byte[QK];
        Span<byte> Laux = stackalloc byte[16];
        Span<float> mins = stackalloc float[QK / 16];
        Span<float> scales = stackalloc float[QK / 16];
        Span<float> sw = stackalloc float[QK / 16];
        Span<float> weight = stackalloc float[16];
        Span<byte> Ls = stackalloc byte[QK / 16];
        Span<byte> Lm = stackalloc byte[QK / 16];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            sw.Clear();
            float sumx2 = 0;
            for (int j = 0; j < QK; ++j) sumx2 += x[j] * x[j];
            float sigma2 = sumx2 / QK;
            for (int j = 0; j < QK / 16; ++j)
            {
                var qw = quantWeights.Slice(QK * i + 16 * j, 16);
                for (int l = 0; l < 16; ++l) weight[l] = qw[l] * MathF.Sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
                for (int l = 0; l < QK / 16; ++l) sw[j] += weight[l];
                scales[j] = ScaleSearch.MakeQkx3Quants(16, 3, x.Slice(16 * j, 16), weight, L.Slice(16 * j, 16), out mins[j], Laux, -0.9f, 0.05f, 36, false);
            }
            float dm = ScaleSearch.MakeQpQuants(QK / 16, 15, scales, Ls, sw);
            float mm = ScaleSearch.MakeQpQuants(QK / 16, 15, mins, Lm, sw);
            SetHalf(y, DOffset, dm);
            SetHalf(y, DminOffset, mm);
            for (int j = 0; j < QK / 16; ++j) y[ScalesOffset + j] = (byte)(Ls[j] | (Lm[j] << 4));
            Requantize(x, y, L);
            Pack(L, y);
        }
    }

    // Levels again from the stored (fp16-rounded, 4-bit) scales and mins, so they fit what dequantization sees.
    private static unsafe void Requantize(ReadOnlySpan<float> x, ReadOnlySpan<byte> y, Span<byte> L)
    {
        float dAll = Half(y, DOffset), dminAll = Half(y, DminOffset);
        bool vector = BlockStats.Enabled;
        for (int j = 0; j < QK / 16; ++j)
        {
            byte sc = y[ScalesOffset + j];
            float d = dAll * (sc & 0xF);
            if (d == 0) continue;
            float dm = dminAll * (sc >> 4);
            if (vector)
            {
                fixed (float* px = x)
                fixed (byte* pl = L)
                    BlockStats.Requantize(px + 16 * j, 16, true, dm, d, 0, 3, 0, pl + 16 * j);
                continue;
            }
            for (int ii = 0; ii < 16; ++ii)
            {
                int l = NearestInt((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (byte)Math.Max(0, Math.Min(3, l));
            }
        }
    }

    private static void Pack(ReadOnlySpan<byte> L, Span<byte> y)
    {
        var qs = y.Slice(QsOffset, QK / 4);
        for (int j = 0; j < QK; j += 128)
            for (int l = 0; l < 32; ++l)
                qs[j / 4 + l] = (byte)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }

    /// <summary>ggml's <c>dequantize_row_q2_K</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q2_K");
        if (dst.Length < nb * QK) throw new ArgumentException("q2_K: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            var y = dst.Slice(i * QK, QK);
            float d = Half(b, DOffset), min = Half(b, DminOffset);
            int is_ = 0, o = 0;
            for (int n = 0; n < QK; n += 128)
            {
                var q = b.Slice(QsOffset + n / 4, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    byte sc = b[ScalesOffset + is_++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; ++l) y[o++] = dl * ((q[l] >> shift) & 3) - ml;
                    sc = b[ScalesOffset + is_++];
                    dl = d * (sc & 0xF); ml = min * (sc >> 4);
                    for (int l = 0; l < 16; ++l) y[o++] = dl * ((q[l + 16] >> shift) & 3) - ml;
                }
            }
        }
    }

    /// <summary>ggml-cpu's <c>ggml_vec_dot_q2_K_q8_K</c>.</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, Q8_K.BlockBytes, y.Length, "q2_K vec_dot");
        if (QuantSimd.UseAvx2) return VecDotAvx2(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), nb);
        return VecDotScalar(x, y, nb);
    }

    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var yb = y.Slice(i * Q8_K.BlockBytes, Q8_K.BlockBytes);
            var sc = xb.Slice(ScalesOffset, 16);
            var q8 = MemoryMarshal.Cast<byte, sbyte>(yb.Slice(Q8_K.QsOffset, QK));
            var bsums = MemoryMarshal.Cast<byte, short>(yb.Slice(Q8_K.BsumsOffset, 32));
            int summs = 0;
            for (int j = 0; j < 16; ++j) summs += bsums[j] * (sc[j] >> 4);
            float yd = Unsafe.ReadUnaligned<float>(in yb[0]);
            float dall = yd * Half(xb, DOffset);
            float dmin = yd * Half(xb, DminOffset);
            int isum = 0, is_ = 0, q8o = 0;
            for (int k = 0; k < QK / 128; ++k)
            {
                var q2 = xb.Slice(QsOffset + 32 * k, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    int d = sc[is_++] & 0xF;
                    int isuml = 0;
                    for (int l = 0; l < 16; ++l) isuml += q8[q8o + l] * ((q2[l] >> shift) & 3);
                    isum += d * isuml;
                    d = sc[is_++] & 0xF;
                    isuml = 0;
                    for (int l = 16; l < 32; ++l) isuml += q8[q8o + l] * ((q2[l] >> shift) & 3);
                    isum += d * isuml;
                    q8o += 32;
                }
            }
            sumf += dall * isum - dmin * summs;
        }
        return sumf;
    }
}
