using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q5_K (ggml block_q5_K): super-blocks of 256 weights in 8 groups of 32, 176 bytes.
//   offset  0  d       2 bytes   fp16 super-scale of the group scales
//   offset  2  dmin    2 bytes   fp16 super-scale of the group mins
//   offset  4  scales 12 bytes   8 six-bit scales and 8 six-bit mins, packed as in Q4_K
//   offset 16  qh     32 bytes   fifth bits: byte b holds element 32k + b at bit k
//   offset 48  qs    128 bytes   low 4 bits: byte 32c + b holds element 64c + b (low nibble) and 64c + 32 + b (high)
// weight = d * scale * q - dmin * min

/// <summary>Kernels of <see cref="GgmlType.Q5_K"/>: 5-bit k-quant super-blocks, dot products against Q8_K.</summary>
public sealed partial class Q5_K : IQuantKernel
{
    /// <summary>Elements per super-block (ggml's <c>QK_K</c>).</summary>
    public const int QK = GgmlTypes.QK_K;
    /// <summary>Bytes per super-block.</summary>
    public const int BlockBytes = 176;
    private const int DOffset = 0, DminOffset = 2, ScalesOffset = 4, QhOffset = 16, QsOffset = 48;

    /// <summary>The shared instance.</summary>
    public static readonly Q5_K Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q5_K;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_K;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_q5_K</c> for one row: the reference path without importance, the weighted search with it.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) QuantizeRowRef(src, dst);
        else QuantizeRowImpl(src, dst, importance);
    }

    /// <summary>
    /// ggml's <c>quantize_row_q5_K_ref</c>: as Q4_K's reference path with 32 levels (<c>make_qkx2_quants</c>, 16 candidate scales).
    /// </summary>
    public static void QuantizeRowRef(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(src.Length, QK, BlockBytes, src.Length, dst.Length, "q5_K");
        Span<byte> L = stackalloc byte[QK];
        Span<byte> Laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[QK / 32];
        Span<float> scales = stackalloc float[QK / 32];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            Q4_K.RefScalesAndMins(x, 31, -0.5f, 0.1f, 15, L, Laux, weights, scales, mins, out float maxScale, out float maxMin);
            Q4_K.PackRefScales(y.Slice(ScalesOffset, 12), scales, mins, maxScale, maxMin);
            SetHalf(y, DOffset, maxScale / 63f);
            SetHalf(y, DminOffset, maxMin / 63f);
            Q4_K.Requantize(x, y, L, 31);
            Pack(L, y);
        }
    }

    /// <summary>ggml's <c>quantize_row_q5_K_impl</c>: as Q4_K's weighted path with 32 levels.</summary>
    public static void QuantizeRowImpl(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> quantWeights)
    {
        int nb = Blocks(src.Length, QK, BlockBytes, src.Length, dst.Length, "q5_K");
        if (quantWeights.Length < src.Length) throw new ArgumentException("q5_K: importance shorter than the row");
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
            Q4_K.ImplScalesAndMins(x, quantWeights.Slice(QK * i, QK), 31, L, Laux, weights, sw, scales, mins, Ls, Lm, out float dBlock, out float mBlock);
            var sc = y.Slice(ScalesOffset, 12);
            for (int j = 0; j < QK / 32; ++j) Q4_K.PackScaleMin(sc, j, Math.Min((byte)63, Ls[j]), Math.Min((byte)63, Lm[j]));
            SetHalf(y, DOffset, dBlock);
            SetHalf(y, DminOffset, mBlock);
            Q4_K.Requantize(x, y, L, 31);
            Pack(L, y);
        }
    }

    private static unsafe void Pack(ReadOnlySpan<byte> L, Span<byte> y)
    {
        if (BlockStats.Enabled)
        {
            // Levels are 0..31: bit 4 goes to qh (branch-free), the low nibbles to qs; same bytes as below.
            fixed (byte* lb = L)
            fixed (byte* py = y)
            {
                var h = Vector256<byte>.Zero;
                var m15 = Vector256.Create((byte)15);
                var s15 = Vector256.Create((sbyte)15);
                for (int k = 0; k < 4; ++k)
                {
                    var l1 = Vector256.Load(lb + 64 * k);
                    var l2 = Vector256.Load(lb + 64 * k + 32);
                    h |= Avx2.CompareGreaterThan(l1.AsSByte(), s15).AsByte() & Vector256.Create((byte)(1 << (2 * k)));
                    h |= Avx2.CompareGreaterThan(l2.AsSByte(), s15).AsByte() & Vector256.Create((byte)(2 << (2 * k)));
                    Vector256.Store((l1 & m15) | ((l2 & m15).AsUInt16() << 4).AsByte(), py + QsOffset + 32 * k);
                }
                Vector256.Store(h, py + QhOffset);
            }
            return;
        }
        var qh = y.Slice(QhOffset, QK / 8);
        var ql = y.Slice(QsOffset, QK / 2);
        qh.Clear();
        byte m1 = 1, m2 = 2;
        for (int n = 0, o = 0; n < QK; n += 64, o += 32)
        {
            for (int j = 0; j < 32; ++j)
            {
                int l1 = L[n + j];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                int l2 = L[n + j + 32];
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[o + j] = (byte)(l1 | (l2 << 4));
            }
            m1 <<= 2; m2 <<= 2;
        }
    }

    /// <summary>ggml's <c>dequantize_row_q5_K</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q5_K");
        if (dst.Length < nb * QK) throw new ArgumentException("q5_K: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            var y = dst.Slice(i * QK, QK);
            float d = Half(b, DOffset), min = Half(b, DminOffset);
            var sc = b.Slice(ScalesOffset, 12);
            var qh = b.Slice(QhOffset, 32);
            int is_ = 0, o = 0;
            byte u1 = 1, u2 = 2;
            for (int j = 0; j < QK; j += 64)
            {
                var ql = b.Slice(QsOffset + j / 2, 32);
                Q4_K.GetScaleMinK4(is_ + 0, sc, out byte s, out byte m);
                float d1 = d * s, m1 = min * m;
                Q4_K.GetScaleMinK4(is_ + 1, sc, out s, out m);
                float d2 = d * s, m2 = min * m;
                for (int l = 0; l < 32; ++l) y[o++] = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; ++l) y[o++] = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
                is_ += 2;
                u1 <<= 2; u2 <<= 2;
            }
        }
    }

    /// <summary>ggml-cpu's <c>ggml_vec_dot_q5_K_q8_K</c>.</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, Q8_K.BlockBytes, y.Length, "q5_K vec_dot");
        if (QuantSimd.UseAvx2) return VecDotAvx2(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), nb);
        return VecDotScalar(x, y, nb);
    }

    // ggml's generic kernel (see Q4_K.VecDotScalar), with the fifth bit added to each quant.
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
            var hm = xb.Slice(QhOffset, 32);
            int a = 0;
            byte m = 1;
            for (int j = 0; j < QK / 64; ++j)
            {
                var q4 = xb.Slice(QsOffset + 32 * j, 32);
                for (int l = 0; l < 32; ++l) aux8[a + l] = (sbyte)((q4[l] & 0xF) + ((hm[l] & m) != 0 ? 16 : 0));
                a += 32; m <<= 1;
                for (int l = 0; l < 32; ++l) aux8[a + l] = (sbyte)((q4[l] >> 4) + ((hm[l] & m) != 0 ? 16 : 0));
                a += 32; m <<= 1;
            }
            Q4_K.UnpackScalesMins(xb.Slice(ScalesOffset, 12), out uint u0, out uint u1, out uint u2, out uint u3);
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
