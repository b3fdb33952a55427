using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Numerics.GgmlRounding;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q3_K (ggml block_q3_K): super-blocks of 256 weights in 16 groups of 16, 110 bytes.
//   offset   0  hmask   32 bytes   high (third) bit: byte b holds element 32k + b at bit k; set means no -4
//   offset  32  qs      64 bytes   low 2 bits: byte 32c + b holds element 128c + 32p + b at bits 2p..2p+1
//   offset  96  scales  12 bytes   16 six-bit group scales (stored +32): low nibbles in bytes 0..7 (groups 0..7
//                                  low, 8..15 high), top two bits in bytes 8..11 (group j at byte 8 + j%4, bits 2*(j/4))
//   offset 108  d        2 bytes   fp16 super-scale
// weight = d * (scale - 32) * (q - (hbit ? 0 : 4))

/// <summary>Kernels of <see cref="GgmlType.Q3_K"/>: 3-bit k-quant super-blocks, dot products against Q8_K.</summary>
public sealed partial class Q3_K : IQuantKernel
{
    /// <summary>Elements per super-block (ggml's <c>QK_K</c>).</summary>
    public const int QK = GgmlTypes.QK_K;
    /// <summary>Bytes per super-block.</summary>
    public const int BlockBytes = 110;
    private const int HmaskOffset = 0, QsOffset = 32, ScalesOffset = 96, DOffset = 108;

    /// <summary>The shared instance.</summary>
    public static readonly Q3_K Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q3_K;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_K;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_q3_K</c> for one row: the reference path without importance, the weighted search with it.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) QuantizeRowRef(src, dst);
        else QuantizeRowImpl(src, dst, importance);
    }

    /// <summary>
    /// ggml's <c>quantize_row_q3_K_ref</c>: per group of 16 a signed scale by <c>make_q3_quants</c> (x²-weighted
    /// coordinate descent), the scales quantized to 6 bits against the largest, then every group requantized.
    /// </summary>
    public static void QuantizeRowRef(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(src.Length, QK, BlockBytes, src.Length, dst.Length, "q3_K");
        Span<sbyte> L = stackalloc sbyte[QK];
        Span<float> scales = stackalloc float[QK / 16];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            float maxScale = 0, amax = 0;
            for (int j = 0; j < QK / 16; ++j)
            {
                scales[j] = ScaleSearch.MakeQ3Quants(16, 4, x.Slice(16 * j, 16), L.Slice(16 * j, 16), true);
                float scale = MathF.Abs(scales[j]);
                if (scale > amax) { amax = scale; maxScale = scales[j]; }
            }
            var sc = y.Slice(ScalesOffset, 12);
            sc.Clear();
            if (maxScale != 0)
            {
                float iscale = -32f / maxScale;
                for (int j = 0; j < QK / 16; ++j)
                {
                    sbyte l = (sbyte)NearestInt(iscale * scales[j]);
                    PackScale(sc, j, Math.Max(-32, Math.Min(31, (int)l)) + 32);
                }
                SetHalf(y, DOffset, 1 / iscale);
            }
            else
            {
                SetHalf(y, DOffset, 0f);
            }
            Finish(x, y, L);
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_q3_K_impl</c>: weights qw·sqrt(σ² + x²) with σ² = 2·mean square of the super-block,
    /// <c>make_qx_quants</c> per group, and the group scales quantized by a weighted <c>make_qx_quants</c>.
    /// </summary>
    public static void QuantizeRowImpl(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> quantWeights)
    {
        int nb = Blocks(src.Length, QK, BlockBytes, src.Length, dst.Length, "q3_K");
        if (quantWeights.Length < src.Length) throw new ArgumentException("q3_K: importance shorter than the row");
        Span<sbyte> L = stackalloc sbyte[QK];
        Span<float> scales = stackalloc float[QK / 16];
        Span<float> weight = stackalloc float[16];
        Span<float> sw = stackalloc float[QK / 16];
        Span<sbyte> Ls = stackalloc sbyte[QK / 16];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            float sumx2 = 0;
            for (int j = 0; j < QK; ++j) sumx2 += x[j] * x[j];
            float sigma2 = 2 * sumx2 / QK;
            for (int j = 0; j < QK / 16; ++j)
            {
                var qw = quantWeights.Slice(QK * i + 16 * j, 16);
                for (int l = 0; l < 16; ++l) weight[l] = qw[l] * MathF.Sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
                float sumw = 0;
                for (int l = 0; l < 16; ++l) sumw += weight[l];
                sw[j] = sumw;
                scales[j] = ScaleSearch.MakeQxQuants(16, 4, x.Slice(16 * j, 16), L.Slice(16 * j, 16), 1, weight);
            }
            var sc = y.Slice(ScalesOffset, 12);
            sc.Clear();
            float dBlock = ScaleSearch.MakeQxQuants(QK / 16, 32, scales, Ls, 1, sw);
            for (int j = 0; j < QK / 16; ++j) PackScale(sc, j, Ls[j]);
            SetHalf(y, DOffset, dBlock);
            Finish(x, y, L);
        }
    }

    // Stores the 6-bit level l (0..63) of group j into the 12 scale bytes.
    private static void PackScale(Span<byte> sc, int j, int l)
    {
        if (j < 8) sc[j] = (byte)(l & 0xF);
        else sc[j - 8] |= (byte)((l & 0xF) << 4);
        l >>= 4;
        sc[j % 4 + 8] |= (byte)(l << (2 * (j / 4)));
    }

    // The signed scale of group j (-32..31) as quantization reads it back.
    private static int Scale(ReadOnlySpan<byte> sc, int j)
    {
        int s = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
        return (sbyte)((s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
    }

    // Requantizes every group with its stored scale, then splits levels into high-bit mask and 2-bit quants.
    private static unsafe void Finish(ReadOnlySpan<float> x, Span<byte> y, Span<sbyte> L)
    {
        float dAll = Half(y, DOffset);
        var sc = y.Slice(ScalesOffset, 12);
        bool vector = BlockStats.Enabled;
        for (int j = 0; j < QK / 16; ++j)
        {
            float d = dAll * Scale(sc, j);
            if (d == 0) continue;
            if (vector)
            {
                fixed (float* px = x)
                fixed (sbyte* pl = L)
                    BlockStats.Requantize(px + 16 * j, 16, false, 0f, d, -4, 3, 4, (byte*)pl + 16 * j);
                continue;
            }
            for (int ii = 0; ii < 16; ++ii)
            {
                int l = NearestInt(x[16 * j + ii] / d);
                L[16 * j + ii] = (sbyte)(Math.Max(-4, Math.Min(3, l)) + 4);
            }
        }
        if (vector)
        {
            // Levels are 0..7: the high mask takes bit 2 of each, the quants keep bits 0..1 (same bytes as below).
            fixed (sbyte* pl = L)
            fixed (byte* py = y)
            {
                byte* lb = (byte*)pl;
                var h = Vector256<byte>.Zero;
                for (int k = 0; k < 8; ++k)
                {
                    var l = Vector256.Load(lb + 32 * k);
                    h |= Avx2.CompareGreaterThan(l.AsSByte(), Vector256.Create((sbyte)3)).AsByte() & Vector256.Create((byte)(1 << k));
                    Vector256.Store(l & Vector256.Create((byte)3), lb + 32 * k);
                }
                Vector256.Store(h, py + HmaskOffset);
                for (int j = 0; j < QK; j += 128)
                {
                    var a = Vector256.Load(lb + j).AsUInt16();
                    var b = Vector256.Load(lb + j + 32).AsUInt16();
                    var c = Vector256.Load(lb + j + 64).AsUInt16();
                    var d = Vector256.Load(lb + j + 96).AsUInt16();
                    Vector256.Store((a | (b << 2) | (c << 4) | (d << 6)).AsByte(), py + QsOffset + j / 4);
                }
            }
            return;
        }
        var hmask = y.Slice(HmaskOffset, QK / 8);
        hmask.Clear();
        int m = 0;
        byte hm = 1;
        for (int j = 0; j < QK; ++j)
        {
            if (L[j] > 3)
            {
                hmask[m] |= hm;
                L[j] -= 4;
            }
            if (++m == QK / 8) { m = 0; hm <<= 1; }
        }
        var qs = y.Slice(QsOffset, QK / 4);
        for (int j = 0; j < QK; j += 128)
            for (int l = 0; l < 32; ++l)
                qs[j / 4 + l] = (byte)((byte)L[j + l] | ((byte)L[j + l + 32] << 2) | ((byte)L[j + l + 64] << 4) | ((byte)L[j + l + 96] << 6));
    }

    // ggml's unpacking of the 12 scale bytes into 16 bytes (each scale + 32), as four little-endian words.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackScales(ReadOnlySpan<byte> packed, out uint a0, out uint a1, out uint a2, out uint a3)
    {
        const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        uint aux0 = Unsafe.ReadUnaligned<uint>(in packed[0]);
        uint aux1 = Unsafe.ReadUnaligned<uint>(in packed[4]);
        uint tmp = Unsafe.ReadUnaligned<uint>(in packed[8]);
        a2 = ((aux0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        a3 = ((aux1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        a0 = (aux0 & kmask2) | (((tmp >> 0) & kmask1) << 4);
        a1 = (aux1 & kmask2) | (((tmp >> 2) & kmask1) << 4);
    }

    /// <summary>ggml's <c>dequantize_row_q3_K</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q3_K");
        if (dst.Length < nb * QK) throw new ArgumentException("q3_K: destination too short");
        Span<sbyte> scales = stackalloc sbyte[16];
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            var y = dst.Slice(i * QK, QK);
            float dAll = Half(b, DOffset);
            UnpackScales(b.Slice(ScalesOffset, 12), out uint a0, out uint a1, out uint a2, out uint a3);
            var sw = MemoryMarshal.Cast<sbyte, uint>(scales);
            sw[0] = a0; sw[1] = a1; sw[2] = a2; sw[3] = a3;
            var hm = b.Slice(HmaskOffset, 32);
            byte m = 1;
            int is_ = 0, o = 0;
            for (int n = 0; n < QK; n += 128)
            {
                var q = b.Slice(QsOffset + n / 4, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    float dl = dAll * (scales[is_++] - 32);
                    for (int l = 0; l < 16; ++l) y[o++] = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    dl = dAll * (scales[is_++] - 32);
                    for (int l = 0; l < 16; ++l) y[o++] = dl * (((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) != 0 ? 0 : 4));
                    m <<= 1;
                }
            }
        }
    }

    /// <summary>ggml-cpu's <c>ggml_vec_dot_q3_K_q8_K</c>.</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, Q8_K.BlockBytes, y.Length, "q3_K vec_dot");
        if (QuantSimd.UseAvx2) return VecDotAvx2(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), nb);
        return VecDotScalar(x, y, nb);
    }

    // ggml's generic kernel: eight int32 lanes by element index mod 8, scaled per block into eight float sums.
    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        Span<sbyte> aux8 = stackalloc sbyte[QK];
        Span<int> aux32 = stackalloc int[8];
        Span<float> sums = stackalloc float[8];
        Span<sbyte> scales = stackalloc sbyte[16];
        sums.Clear();
        for (int i = 0; i < nb; ++i)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var yb = y.Slice(i * Q8_K.BlockBytes, Q8_K.BlockBytes);
            var q8 = MemoryMarshal.Cast<byte, sbyte>(yb.Slice(Q8_K.QsOffset, QK));
            var hm = xb.Slice(HmaskOffset, 32);
            aux32.Clear();
            int a = 0;
            byte m = 1;
            for (int j = 0; j < QK; j += 128)
            {
                var q3 = xb.Slice(QsOffset + j / 4, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    for (int l = 0; l < 32; ++l) aux8[a + l] = (sbyte)(((q3[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    a += 32; m <<= 1;
                }
            }
            UnpackScales(xb.Slice(ScalesOffset, 12), out uint a0, out uint a1, out uint a2, out uint a3);
            var sw = MemoryMarshal.Cast<sbyte, uint>(scales);
            sw[0] = a0; sw[1] = a1; sw[2] = a2; sw[3] = a3;
            int o = 0;
            for (int j = 0; j < QK / 16; ++j)
            {
                int scale = scales[j] - 32;
                for (int half = 0; half < 2; ++half, o += 8)
                    for (int l = 0; l < 8; ++l) aux32[l] += scale * (short)(q8[o + l] * aux8[o + l]);
            }
            float d = Half(xb, DOffset) * Unsafe.ReadUnaligned<float>(in yb[0]);
            for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
        }
        float sumf = 0;
        for (int l = 0; l < 8; ++l) sumf += sums[l];
        return sumf;
    }
}
