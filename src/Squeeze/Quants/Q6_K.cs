using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Squeeze.Numerics.GgmlRounding;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q6_K (ggml block_q6_K): super-blocks of 256 weights in 16 groups of 16, 210 bytes.
//   offset   0  ql     128 bytes   low 4 bits: in each half of 128, byte b (0..31) holds elements b (low nibble) and
//                                  64 + b (high nibble), byte 32 + b holds elements 32 + b and 96 + b
//   offset 128  qh      64 bytes   high 2 bits: in each half, byte b holds elements b, 32+b, 64+b, 96+b at bits 0, 2, 4, 6
//   offset 192  scales  16 bytes   int8 group scales
//   offset 208  d        2 bytes   fp16 super-scale
// weight = d * scale * (q - 32)

/// <summary>Kernels of <see cref="GgmlType.Q6_K"/>: 6-bit k-quant super-blocks, dot products against Q8_K.</summary>
public sealed partial class Q6_K : IQuantKernel
{
    /// <summary>Elements per super-block (ggml's <c>QK_K</c>).</summary>
    public const int QK = GgmlTypes.QK_K;
    /// <summary>Bytes per super-block.</summary>
    public const int BlockBytes = 210;
    private const int QlOffset = 0, QhOffset = 128, ScalesOffset = 192, DOffset = 208;

    /// <summary>The shared instance.</summary>
    public static readonly Q6_K Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q6_K;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_K;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>
    /// ggml's <c>quantize_q6_K</c> for one row: per group of 16 a signed scale by <c>make_qx_quants</c>, weighted by x²
    /// (<c>quantize_row_q6_K_ref</c>) or by the importance weights themselves (<c>quantize_row_q6_K_impl</c>).
    /// </summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance) => Quantize(src, dst, importance);

    /// <summary>
    /// Both of ggml's Q6_K quantizers: <paramref name="quantWeights"/> empty is <c>quantize_row_q6_K_ref</c>, else
    /// <c>quantize_row_q6_K_impl</c> (which differ only in the weights of the group search).
    /// </summary>
    public static unsafe void Quantize(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> quantWeights)
    {
        int nb = Blocks(src.Length, QK, BlockBytes, src.Length, dst.Length, "q6_K");
        if (!quantWeights.IsEmpty && quantWeights.Length < src.Length) throw new ArgumentException("q6_K: importance shorter than the row");
        Span<sbyte> L = stackalloc sbyte[QK];
        Span<float> scales = stackalloc float[QK / 16];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < QK / 16; ++ib)
            {
                var qw = quantWeights.IsEmpty ? default : quantWeights.Slice(QK * i + 16 * ib, 16);
                float scale = ScaleSearch.MakeQxQuants(16, 32, x.Slice(16 * ib, 16), L.Slice(16 * ib, 16), 1, qw);
                scales[ib] = scale;
                float absScale = MathF.Abs(scale);
                if (absScale > maxAbsScale) { maxAbsScale = absScale; maxScale = scale; }
            }
            if (maxAbsScale < ScaleSearch.GroupMaxEps)
            {
                y.Clear();
                continue;
            }
            float iscale = -128f / maxScale;
            SetHalf(y, DOffset, 1 / iscale);
            var sc = MemoryMarshal.Cast<byte, sbyte>(y.Slice(ScalesOffset, QK / 16));
            for (int ib = 0; ib < QK / 16; ++ib) sc[ib] = (sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
            float dAll = Half(y, DOffset);
            bool vector = BlockStats.Enabled;
            for (int j = 0; j < QK / 16; ++j)
            {
                float d = dAll * sc[j];
                if (d == 0) continue;
                if (vector)
                {
                    fixed (float* px = x)
                    fixed (sbyte* pl = L)
                        BlockStats.Requantize(px + 16 * j, 16, false, 0f, d, -32, 31, 32, (byte*)pl + 16 * j);
                    continue;
                }
                for (int ii = 0; ii < 16; ++ii)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    L[16 * j + ii] = (sbyte)(Math.Max(-32, Math.Min(31, l)) + 32);
                }
            }
            var ql = y.Slice(QlOffset, QK / 2);
            var qh = y.Slice(QhOffset, QK / 4);
            for (int j = 0, qlo = 0, qho = 0; j < QK; j += 128, qlo += 64, qho += 32)
            {
                for (int l = 0; l < 32; ++l)
                {
                    int l0 = (byte)L[j + l], l1 = (byte)L[j + l + 32], l2 = (byte)L[j + l + 64], l3 = (byte)L[j + l + 96];
                    ql[qlo + l] = (byte)((l0 & 0xF) | ((l2 & 0xF) << 4));
                    ql[qlo + l + 32] = (byte)((l1 & 0xF) | ((l3 & 0xF) << 4));
                    qh[qho + l] = (byte)((l0 >> 4) | ((l1 >> 4) << 2) | ((l2 >> 4) << 4) | ((l3 >> 4) << 6));
                }
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_q6_K</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q6_K");
        if (dst.Length < nb * QK) throw new ArgumentException("q6_K: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            float d = Half(b, DOffset);
            for (int n = 0, h = 0; n < QK; n += 128, h++)
            {
                var ql = b.Slice(QlOffset + 64 * h, 64);
                var qh = b.Slice(QhOffset + 32 * h, 32);
                var sc = MemoryMarshal.Cast<byte, sbyte>(b.Slice(ScalesOffset + 8 * h, 8));
                var y = dst.Slice(i * QK + n, 128);
                for (int l = 0; l < 32; ++l)
                {
                    int is_ = l / 16;
                    int q1 = (sbyte)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = (sbyte)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = (sbyte)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = (sbyte)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * sc[is_ + 0] * q1;
                    y[l + 32] = d * sc[is_ + 2] * q2;
                    y[l + 64] = d * sc[is_ + 4] * q3;
                    y[l + 96] = d * sc[is_ + 6] * q4;
                }
            }
        }
    }

    /// <summary>ggml-cpu's <c>ggml_vec_dot_q6_K_q8_K</c>.</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, Q8_K.BlockBytes, y.Length, "q6_K vec_dot");
        if (QuantSimd.UseAvx2) return VecDotAvx2(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), nb);
        return VecDotScalar(x, y, nb);
    }

    // ggml's generic kernel: eight int32 lanes by element index mod 8, scaled per block into eight float sums.
    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        Span<sbyte> aux8 = stackalloc sbyte[QK];
        Span<int> aux32 = stackalloc int[8];
        Span<float> sums = stackalloc float[8];
        sums.Clear();
        for (int i = 0; i < nb; ++i)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var yb = y.Slice(i * Q8_K.BlockBytes, Q8_K.BlockBytes);
            var q8 = MemoryMarshal.Cast<byte, sbyte>(yb.Slice(Q8_K.QsOffset, QK));
            for (int j = 0, a = 0, h = 0; j < QK; j += 128, a += 128, h++)
            {
                var q4 = xb.Slice(QlOffset + 64 * h, 64);
                var qh = xb.Slice(QhOffset + 32 * h, 32);
                for (int l = 0; l < 32; ++l)
                {
                    aux8[a + l] = (sbyte)((sbyte)((q4[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                    aux8[a + l + 32] = (sbyte)((sbyte)((q4[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                    aux8[a + l + 64] = (sbyte)((sbyte)((q4[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                    aux8[a + l + 96] = (sbyte)((sbyte)((q4[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
            }
            aux32.Clear();
            var sc = MemoryMarshal.Cast<byte, sbyte>(xb.Slice(ScalesOffset, 16));
            for (int j = 0, o = 0; j < QK / 16; ++j)
            {
                int scale = sc[j];
                for (int k = 0; k < 2; ++k, o += 8)
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
