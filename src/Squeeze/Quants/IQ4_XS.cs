// IQ4_XS: 256 weights in 136 bytes (4.25 bits per weight), ggml's block_iq4_xs.
//   d            2 bytes   fp16 super-block scale
//   scales_h     2 bytes   bits 4..5 of the eight 6-bit block scales, two bits per block (block ib at bit 2*ib)
//   scales_l[4]  4 bytes   bits 0..3 of the block scales, two per byte (low nibble first)
//   qs[128]    128 bytes   4-bit indices into Iq4Values.KValues, 16 bytes per 32 weights (j low nibble, j+16 high)
// weight = d * (ls - 32) * kvalues_iq4nl[index].

using System.Buffers.Binary;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>Kernels of <see cref="GgmlType.IQ4_XS"/> (dot products against <see cref="GgmlType.Q8_K"/>).</summary>
internal sealed partial class IQ4_XS : IQuantKernel
{
    private const int QK_K = 256;
    private const int BlockBytes = 136;
    private const int OffScalesH = 2, OffScalesL = 4, OffQs = 8;

    public GgmlType Type => GgmlType.IQ4_XS;
    public GgmlType VecDotType => GgmlType.Q8_K;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        IqDot.CheckQuantizeArgs(src, dst, importance, QK_K, BlockBytes);
        int nblock = src.Length / QK_K;
        Span<float> weight = stackalloc float[32];
        Span<float> scales = stackalloc float[QK_K / 32];
        Span<byte> L = stackalloc byte[QK_K];
        for (int ibl = 0; ibl < nblock; ibl++)
        {
            var x = src.Slice(QK_K * ibl, QK_K);
            var y = dst.Slice(BlockBytes * ibl, BlockBytes);
            float sigma2 = Iq4Quantizer.Sigma2(x);
            float maxScale = 0, amaxScale = 0;
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                var xb = x.Slice(32 * ib, 32);
                var qw = importance.IsEmpty ? default : importance.Slice(QK_K * ibl + 32 * ib, 32);
                Iq4Quantizer.Weights(xb, qw, sigma2, weight);
                float s = Iq4Quantizer.BlockScale(xb, weight);
                scales[ib] = s;
                float absD = MathF.Abs(s);
                if (absD > amaxScale)
                {
                    amaxScale = absD; maxScale = s;
                }
            }

            ushort scalesH = 0;
            float d = -maxScale / 32;
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(d));
            float id = d != 0 ? 1 / d : 0f;
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                int l = GgmlRounding.NearestInt(id * scales[ib]);
                l = Math.Max(-32, Math.Min(31, l));
                float dl = d * l;
                float idl = dl != 0 ? 1 / dl : 0f;
                Iq4Quantizer.Levels(x.Slice(32 * ib, 32), idl, L.Slice(32 * ib, 32));
                l += 32;
                int lLow = l & 0xf, lHigh = l >> 4;
                if (ib % 2 == 0) y[OffScalesL + ib / 2] = (byte)lLow;
                else y[OffScalesL + ib / 2] |= (byte)(lLow << 4);
                scalesH |= (ushort)(lHigh << 2 * ib);
            }
            BinaryPrimitives.WriteUInt16LittleEndian(y.Slice(OffScalesH), scalesH);
            Iq4Quantizer.Pack(L, y.Slice(OffQs));
        }
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        IqDot.CheckDequantizeArgs(src, dst, QK_K, BlockBytes);
        int nb = dst.Length / QK_K;
        var values = Iq4Values.KValues;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x));
            int scalesH = BinaryPrimitives.ReadUInt16LittleEndian(x.Slice(OffScalesH));
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                int ls = ((x[OffScalesL + ib / 2] >> 4 * (ib % 2)) & 0xf) | (((scalesH >> 2 * ib) & 3) << 4);
                float dl = d * (ls - 32);
                var qs = x.Slice(OffQs + 16 * ib, 16);
                for (int j = 0; j < 16; j++)
                {
                    y[32 * ib + j] = dl * values[qs[j] & 0xf];
                    y[32 * ib + j + 16] = dl * values[qs[j] >> 4];
                }
            }
        }
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        if (n % QK_K != 0) throw new ArgumentException($"n = {n} is not a multiple of {QK_K}", nameof(n));
        if (x.Length < n / QK_K * BlockBytes || y.Length < n / QK_K * IqDot.Q8KBytes) throw new ArgumentException("rows are shorter than n");
        if (Simd.Level >= SimdLevel.Avx2 && System.Runtime.Intrinsics.X86.Avx2.IsSupported) return VecDotAvx2(x, y, n);
        return VecDotScalar(x, y, n);
    }

    /// <summary>The scalar reference, in ggml-cpu's x86 lane order (see <see cref="IQ3_XXS.VecDotScalar"/>).</summary>
    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        var values = Iq4Values.KValues;
        Span<float> acc = stackalloc float[8];
        Span<int> lanes = stackalloc int[8];
        acc.Clear();
        for (int ibl = 0; ibl < nb; ibl++)
        {
            var xb = x.Slice(ibl * BlockBytes, BlockBytes);
            var yb = y.Slice(ibl * IqDot.Q8KBytes, IqDot.Q8KBytes);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb)) * IqDot.Q8KD(yb);
            var q8 = IqDot.Q8KQs(yb);
            int sh = BinaryPrimitives.ReadUInt16LittleEndian(xb.Slice(OffScalesH));
            lanes.Clear();
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                int ls = (((xb[OffScalesL + ib / 2] >> 4 * (ib % 2)) & 0xf) | (((sh >> 2 * ib) & 3) << 4)) - 32;
                var qs = xb.Slice(OffQs + 16 * ib, 16);
                for (int lane = 0; lane < 8; lane++)
                {
                    int sum = 0;
                    for (int j = 4 * lane; j < 4 * lane + 4; j++)
                    {
                        int q4 = j < 16 ? values[qs[j] & 0xf] : values[qs[j - 16] >> 4];
                        sum += IqDot.SignedProduct(q4, q8[32 * ib + j]);
                    }
                    lanes[lane] += sum * ls;
                }
            }
            for (int j = 0; j < 8; j++) acc[j] = MathF.FusedMultiplyAdd(d, lanes[j], acc[j]);
        }
        return IqDot.HorizontalSum8(acc);
    }
}
