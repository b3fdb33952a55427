using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Squeeze.Numerics.GgmlRounding;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q4_K (ggml block_q4_K): super-blocks of 256 weights in 8 groups of 32, 144 bytes.
//   offset  0  d       2 bytes   fp16 super-scale of the group scales
//   offset  2  dmin    2 bytes   fp16 super-scale of the group mins
//   offset  4  scales 12 bytes   8 six-bit scales and 8 six-bit mins (ggml's get_scale_min_k4 packing: groups 0..3
//                                in the low 6 bits of bytes 0..3 / 4..7, groups 4..7 as nibbles of bytes 8..11 with
//                                their top two bits in the high bits of bytes 0..7)
//   offset 16  qs    128 bytes   4-bit quants: byte 32c + b holds element 64c + b (low nibble) and 64c + 32 + b (high)
// weight = d * scale * q - dmin * min

/// <summary>Kernels of <see cref="GgmlType.Q4_K"/>: 4-bit k-quant super-blocks, dot products against Q8_K.</summary>
public sealed partial class Q4_K : IQuantKernel
{
    /// <summary>Elements per super-block (ggml's <c>QK_K</c>).</summary>
    public const int QK = GgmlTypes.QK_K;
    /// <summary>Bytes per super-block.</summary>
    public const int BlockBytes = 144;
    private const int DOffset = 0, DminOffset = 2, ScalesOffset = 4, QsOffset = 16;

    /// <summary>The shared instance.</summary>
    public static readonly Q4_K Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q4_K;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_K;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_q4_K</c> for one row: the reference path without importance, the weighted search with it.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) QuantizeRowRef(src, dst);
        else QuantizeRowImpl(src, dst, importance);
    }

    /// <summary>
    /// ggml's <c>quantize_row_q4_K_ref</c>: per group of 32 a scale and min by <c>make_qkx2_quants</c> (weights
    /// rms + |x|), both quantized to 6 bits against their largest value, then every group requantized.
    /// </summary>
    public static void QuantizeRowRef(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(src.Length, QK, BlockBytes, src.Length, dst.Length, "q4_K");
        Span<byte> L = stackalloc byte[QK];
        Span<byte> Laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[QK / 32];
        Span<float> scales = stackalloc float[QK / 32];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            RefScalesAndMins(x, 15, -1f, 0.1f, 20, L, Laux, weights, scales, mins, out float maxScale, out float maxMin);
            PackRefScales(y.Slice(ScalesOffset, 12), scales, mins, maxScale, maxMin);
            SetHalf(y, DOffset, maxScale / 63f);
            SetHalf(y, DminOffset, maxMin / 63f);
            Requantize(x, y, L, 15);
            Pack(L, y);
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_q4_K_impl</c>: weights qw·sqrt(σ² + x²) with σ² = 2·mean square of the super-block,
    /// <c>make_qkx3_quants</c> per group, and group scales and mins quantized by <c>make_qp_quants</c>.
    /// </summary>
    public static void QuantizeRowImpl(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> quantWeights)
    {
        int nb = Blocks(src.Length, QK, BlockBytes, src.Length, dst.Length, "q4_K");
        if (quantWeights.Length < src.Length) throw new ArgumentException("q4_K: importance shorter than the row");
        Span<byte> L = stackalloc byte[QK];
        Span<byte> Laux = stackalloc byte[32];
        Span<byte> Ls = stackalloc byte[QK / 32];
        Span<byte> Lm = stackalloc byte[QK / 32];
        Span<float> weights = stackalloc float[32];
        Span<float> sw = stackalloc float[QK / 32];
        Span<float> mins = stackalloc float[QK / 32];
        Span<float> scales = stackalloc float[QK / 32];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            ImplScalesAndMins(x, quantWeights.Slice(QK * i, QK), 15, L, Laux, weights, sw, scales, mins, Ls, Lm, out float dBlock, out float mBlock);
            var sc = y.Slice(ScalesOffset, 12);
            for (int j = 0; j < QK / 32; ++j) PackScaleMin(sc, j, Ls[j], Lm[j]);
            SetHalf(y, DOffset, dBlock);
            SetHalf(y, DminOffset, mBlock);
            Requantize(x, y, L, 15);
            Pack(L, y);
        }
    }

    // The reference scale search shared with Q5_K: weights av_x + |x| per group of 32, make_qkx2_quants.
    internal static void RefScalesAndMins(ReadOnlySpan<float> x, int nmax, float rmin, float rdelta, int nstep,
        Span<byte> L, Span<byte> Laux, Span<float> weights, Span<float> scales, Span<float> mins, out float maxScale, out float maxMin)
    {
        maxScale = 0; maxMin = 0;
        for (int j = 0; j < QK / 32; ++j)
        {
            var xj = x.Slice(32 * j, 32);
            float sumX2 = 0;
            for (int l = 0; l < 32; ++l) sumX2 += xj[l] * xj[l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = avX + MathF.Abs(xj[l]);
            scales[j] = ScaleSearch.MakeQkx2Quants(32, nmax, xj, weights, L.Slice(32 * j, 32), out mins[j], Laux, rmin, rdelta, nstep, false);
            float scale = scales[j];
            if (scale > maxScale) maxScale = scale;
            float min = mins[j];
            if (min > maxMin) maxMin = min;
        }
    }

    // The weighted scale search shared with Q5_K (quantize_row_q4_K_impl / quantize_row_q5_K_impl).
    internal static void ImplScalesAndMins(ReadOnlySpan<float> x, ReadOnlySpan<float> quantWeights, int nmax,
        Span<byte> L, Span<byte> Laux, Span<float> weights, Span<float> sw, Span<float> scales, Span<float> mins,
        Span<byte> Ls, Span<byte> Lm, out float dBlock, out float mBlock)
    {
        float sumX2 = 0;
        for (int l = 0; l < QK; ++l) sumX2 += x[l] * x[l];
        float sigma2 = 2 * sumX2 / QK;
        for (int j = 0; j < QK / 32; ++j)
        {
            var xj = x.Slice(32 * j, 32);
            var qw = quantWeights.Slice(32 * j, 32);
            for (int l = 0; l < 32; ++l) weights[l] = qw[l] * MathF.Sqrt(sigma2 + xj[l] * xj[l]);
            float sumw = 0;
            for (int l = 0; l < 32; ++l) sumw += weights[l];
            sw[j] = sumw;
            scales[j] = ScaleSearch.MakeQkx3Quants(32, nmax, xj, weights, L.Slice(32 * j, 32), out mins[j], Laux, -0.9f, 0.05f, 36, false);
        }
        dBlock = ScaleSearch.MakeQpQuants(QK / 32, 63, scales, Ls, sw);
        mBlock = ScaleSearch.MakeQpQuants(QK / 32, 63, mins, Lm, sw);
    }

    // The reference path's 6-bit quantization of scales and mins against their largest values.
    internal static void PackRefScales(Span<byte> sc, ReadOnlySpan<float> scales, ReadOnlySpan<float> mins, float maxScale, float maxMin)
    {
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        for (int j = 0; j < QK / 32; ++j)
        {
            byte ls = (byte)NearestInt(invScale * scales[j]);
            byte lm = (byte)NearestInt(invMin * mins[j]);
            PackScaleMin(sc, j, Math.Min((byte)63, ls), Math.Min((byte)63, lm));
        }
    }

    /// <summary>Stores the 6-bit scale and min of group <paramref name="j"/> (0..7) into the 12 packed bytes.</summary>
    internal static void PackScaleMin(Span<byte> sc, int j, byte ls, byte lm)
    {
        if (j < 4)
        {
            sc[j] = ls;
            sc[j + 4] = lm;
        }
        else
        {
            sc[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
            sc[j - 4] |= (byte)((ls >> 4) << 6);
            sc[j] |= (byte)((lm >> 4) << 6);
        }
    }

    /// <summary>ggml's <c>get_scale_min_k4</c>: the 6-bit scale and min of group <paramref name="j"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void GetScaleMinK4(int j, ReadOnlySpan<byte> q, out byte d, out byte m)
    {
        if (j < 4)
        {
            d = (byte)(q[j] & 63); m = (byte)(q[j + 4] & 63);
        }
        else
        {
            d = (byte)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
            m = (byte)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
        }
    }

    /// <summary>The 12 packed bytes as ggml's dot products unpack them: 8 scales (words 0, 1), then 8 mins (words 2, 3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackScalesMins(ReadOnlySpan<byte> packed, out uint u0, out uint u1, out uint u2, out uint u3)
    {
        const uint kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
        uint t0 = Unsafe.ReadUnaligned<uint>(in packed[0]);
        uint t1 = Unsafe.ReadUnaligned<uint>(in packed[4]);
        uint t2 = Unsafe.ReadUnaligned<uint>(in packed[8]);
        u3 = ((t2 >> 4) & kmask2) | (((t1 >> 6) & kmask3) << 4);
        u2 = t1 & kmask1;
        u1 = (t2 & kmask2) | (((t0 >> 6) & kmask3) << 4);
        u0 = t0 & kmask1;
    }

    // Levels again from the stored (fp16-rounded, 6-bit) scales and mins.
    internal static unsafe void Requantize(ReadOnlySpan<float> x, ReadOnlySpan<byte> y, Span<byte> L, int nmax)
    {
        float dAll = Half(y, DOffset), dminAll = Half(y, DminOffset);
        var sc = y.Slice(ScalesOffset, 12);
        bool vector = BlockStats.Enabled;
        for (int j = 0; j < QK / 32; ++j)
        {
            GetScaleMinK4(j, sc, out byte s, out byte m);
            float d = dAll * s;
            if (d == 0) continue;
            float dm = dminAll * m;
            if (vector)
            {
                fixed (float* px = x)
                fixed (byte* pl = L)
                    BlockStats.Requantize(px + 32 * j, 32, true, dm, d, 0, nmax, 0, pl + 32 * j);
                continue;
            }
            for (int ii = 0; ii < 32; ++ii)
            {
                int l = NearestInt((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (byte)Math.Max(0, Math.Min(nmax, l));
            }
        }
    }

    private static void Pack(ReadOnlySpan<byte> L, Span<byte> y)
    {
        var q = y.Slice(QsOffset, QK / 2);
        for (int j = 0, o = 0; j < QK; j += 64, o += 32)
            for (int l = 0; l < 32; ++l) q[o + l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
    }

    /// <summary>ggml's <c>dequantize_row_q4_K</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q4_K");
        if (dst.Length < nb * QK) throw new ArgumentException("q4_K: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            var y = dst.Slice(i * QK, QK);
            float d = Half(b, DOffset), min = Half(b, DminOffset);
            var sc = b.Slice(ScalesOffset, 12);
            int is_ = 0, o = 0;
            for (int j = 0; j < QK; j += 64)
            {
                var q = b.Slice(QsOffset + j / 2, 32);
                GetScaleMinK4(is_ + 0, sc, out byte s, out byte m);
                float d1 = d * s, m1 = min * m;
                GetScaleMinK4(is_ + 1, sc, out s, out m);
                float d2 = d * s, m2 = min * m;
                for (int l = 0; l < 32; ++l) y[o++] = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; ++l) y[o++] = d2 * (q[l] >> 4) - m2;
                is_ += 2;
            }
        }
    }

    /// <summary>ggml-cpu's <c>ggml_vec_dot_q4_K_q8_K</c>.</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, Q8_K.BlockBytes, y.Length, "q4_K vec_dot");
        if (QuantSimd.UseAvx2) return VecDotAvx2(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), nb);
        return VecDotScalar(x, y, nb);
    }

    // ggml's generic kernel: eight int32 lanes by element index mod 8, scaled per block into eight float sums;
    // the mins come off a separate running sum through Q8_K's group sums.
    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        Span<sbyte> aux8 = stackalloc sbyte[QK];
        Span<int> aux32 = stackalloc int[8];
        Span<float> sums = stackalloc float[8];
        Span<byte> scalesMins = stackalloc byte[16];
        sums.Clear();
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var yb = y.Slice(i * Q8_K.BlockBytes, Q8_K.BlockBytes);
            var q8 = MemoryMarshal.Cast<byte, sbyte>(yb.Slice(Q8_K.QsOffset, QK));
            var bsums = MemoryMarshal.Cast<byte, short>(yb.Slice(Q8_K.BsumsOffset, 32));
            int a = 0;
            for (int j = 0; j < QK / 64; ++j)
            {
                var q4 = xb.Slice(QsOffset + 32 * j, 32);
                for (int l = 0; l < 32; ++l) aux8[a + l] = (sbyte)(q4[l] & 0xF);
                a += 32;
                for (int l = 0; l < 32; ++l) aux8[a + l] = (sbyte)(q4[l] >> 4);
                a += 32;
            }
            UnpackScalesMins(xb.Slice(ScalesOffset, 12), out uint u0, out uint u1, out uint u2, out uint u3);
            var words = MemoryMarshal.Cast<byte, uint>(scalesMins);
            words[0] = u0; words[1] = u1; words[2] = u2; words[3] = u3;
            int sumi = 0;
            for (int j = 0; j < QK / 16; ++j) sumi += bsums[j] * scalesMins[8 + j / 2];
            aux32.Clear();
            for (int j = 0, o = 0; j < QK / 32; ++j)
            {
                int scale = scalesMins[j];
                for (int k = 0; k < 4; ++k, o += 8)
                    for (int l = 0; l < 8; ++l) aux32[l] += scale * (short)(q8[o + l] * aux8[o + l]);
            }
            float yd = Unsafe.ReadUnaligned<float>(in yb[0]);
            float d = Half(xb, DOffset) * yd;
            for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
            float dmin = Half(xb, DminOffset) * yd;
            sumf -= dmin * sumi;
        }
        for (int l = 0; l < 8; ++l) sumf += sums[l];
        return sumf;
    }
}
