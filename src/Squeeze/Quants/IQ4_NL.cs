// IQ4_NL: 32 weights in 18 bytes (4.5 bits per weight), ggml's block_iq4_nl.
//   d        2 bytes   fp16 block scale
//   qs[16]  16 bytes   4-bit indices into Iq4Values.KValues: byte j holds weight j (low nibble) and j+16 (high)
// weight = d * kvalues_iq4nl[index].

using System.Buffers.Binary;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>Kernels of <see cref="GgmlType.IQ4_NL"/> (dot products against <see cref="GgmlType.Q8_0"/>).</summary>
internal sealed partial class IQ4_NL : IQuantKernel
{
    private const int QK4_NL = 32;
    private const int BlockBytes = 18;

    public GgmlType Type => GgmlType.IQ4_NL;
    public GgmlType VecDotType => GgmlType.Q8_0;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        IqDot.CheckQuantizeArgs(src, dst, importance, QK4_NL, BlockBytes);
        int nblock = src.Length / QK4_NL;
        Span<float> weight = stackalloc float[QK4_NL];
        Span<byte> L = stackalloc byte[QK4_NL];
        for (int ibl = 0; ibl < nblock; ibl++)
        {
            var x = src.Slice(QK4_NL * ibl, QK4_NL);
            var y = dst.Slice(BlockBytes * ibl, BlockBytes);
            var qw = importance.IsEmpty ? default : importance.Slice(QK4_NL * ibl, QK4_NL);
            float sigma2 = Iq4Quantizer.Sigma2(x);
            Iq4Quantizer.Weights(x, qw, sigma2, weight);
            float d = Iq4Quantizer.BlockScale(x, weight);
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(d));
            float id = d != 0 ? 1 / d : 0;
            Iq4Quantizer.Levels(x, id, L);
            Iq4Quantizer.Pack(L, y.Slice(2));
        }
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        IqDot.CheckDequantizeArgs(src, dst, QK4_NL, BlockBytes);
        int nb = dst.Length / QK4_NL;
        var values = Iq4Values.KValues;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            var y = dst.Slice(i * QK4_NL, QK4_NL);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x));
            for (int j = 0; j < QK4_NL / 2; j++)
            {
                y[j] = d * values[x[2 + j] & 0xf];
                y[j + QK4_NL / 2] = d * values[x[2 + j] >> 4];
            }
        }
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        if (n % QK4_NL != 0) throw new ArgumentException($"n = {n} is not a multiple of {QK4_NL}", nameof(n));
        if (x.Length < n / QK4_NL * BlockBytes || y.Length < n / QK4_NL * IqDot.Q80Bytes) throw new ArgumentException("rows are shorter than n");
        if (Simd.Level >= SimdLevel.Avx2 && System.Runtime.Intrinsics.X86.Avx2.IsSupported) return VecDotAvx2(x, y, n);
        return VecDotScalar(x, y, n);
    }

    /// <summary>
    /// The scalar reference, in ggml-cpu's x86 order: block pairs go to two sets of eight float lanes (even and odd
    /// blocks), each lane the sum of four products, fused multiply-add; the lanes are summed as ggml does, and an odd
    /// last block is added on its own.
    /// </summary>
    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK4_NL;
        var values = Iq4Values.KValues;
        Span<float> acc1 = stackalloc float[8];
        Span<float> acc2 = stackalloc float[8];
        acc1.Clear();
        acc2.Clear();
        int ib = 0;
        for (; ib + 1 < nb; ib += 2)
        {
            for (int b = 0; b < 2; b++)
            {
                var xb = x.Slice((ib + b) * BlockBytes, BlockBytes);
                var yb = y.Slice((ib + b) * IqDot.Q80Bytes, IqDot.Q80Bytes);
                float d = IqDot.Q80D(yb) * Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb));
                var q8 = IqDot.Q80Qs(yb);
                var acc = b == 0 ? acc1 : acc2;
                for (int lane = 0; lane < 8; lane++)
                {
                    int sum = 0;
                    for (int j = 4 * lane; j < 4 * lane + 4; j++)
                    {
                        int q4 = j < 16 ? values[xb[2 + j] & 0xf] : values[xb[2 + j - 16] >> 4];
                        sum += IqDot.SignedProduct(q4, q8[j]);
                    }
                    acc[lane] = MathF.FusedMultiplyAdd(d, sum, acc[lane]);
                }
            }
        }
        for (int lane = 0; lane < 8; lane++) acc1[lane] += acc2[lane];
        float sumf = IqDot.HorizontalSum8(acc1);
        for (; ib < nb; ib++)
        {
            var xb = x.Slice(ib * BlockBytes, BlockBytes);
            var yb = y.Slice(ib * IqDot.Q80Bytes, IqDot.Q80Bytes);
            float d = IqDot.Q80D(yb) * Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb));
            var q8 = IqDot.Q80Qs(yb);
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < QK4_NL / 2; j++)
            {
                sumi1 += q8[j] * values[xb[2 + j] & 0xf];
                sumi2 += q8[j + QK4_NL / 2] * values[xb[2 + j] >> 4];
            }
            // ggml's compilers contract this statement into a fused multiply-add.
            sumf = MathF.FusedMultiplyAdd(d, sumi1 + sumi2, sumf);
        }
        return sumf;
    }
}
