using System.Buffers.Binary;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// Q2_0 block layout (64 weights, 18 bytes):
//   d   2 bytes   fp16  scale: the largest absolute value of the block's weights
//   qs 16 bytes         2 bits per weight, weight j at bits 2*(j % 4) of byte (j / 4); codes 0..3 mean -1, 0, +1, +2 times d
// Importance weights are ignored (quantize_q2_0 calls the reference row quantizer).

/// <summary>
/// Kernels of <see cref="GgmlType.Q2_0"/>: 2-bit codes with one fp16 scale per 64 weights. ggml-cpu has no x86
/// kernel for its dot product, so the oracle runs the generic one as GCC compiled it: per Q8_0 block an exact
/// integer sum, folded in with fused multiply-adds (activation scale first, then <c>d</c>).
/// </summary>
public sealed partial class Q2_0Kernel : IQuantKernel
{
    private const int QK = 64;
    private const int BlockBytes = 18;

    public GgmlType Type => GgmlType.Q2_0;
    public GgmlType VecDotType => GgmlType.Q8_0;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = src.Length / QK;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            float amax = 0f;
            for (int j = 0; j < QK; j++)
            {
                float a = MathF.Abs(x[j]);
                if (a > amax) amax = a;
            }
            float d = amax;
            float id = d > 0f ? 1f / d : 0f;
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(d));
            for (int b = 0; b < QK / 4; b++)
            {
                int packed = 0;
                for (int k = 0; k < 4; k++)
                {
                    int q = GgmlRounding.TruncateToInt(GgmlRounding.RoundAwayFromZero(x[b * 4 + k] * id)) + 1;
                    q = Math.Clamp(q, 0, 3);
                    packed |= q << (2 * k);
                }
                y[2 + b] = (byte)packed;
            }
        }
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = dst.Length / QK;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            float d = F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x));
            var y = dst.Slice(i * QK, QK);
            for (int j = 0; j < QK; j++) y[j] = (((x[2 + j / 4] >> (2 * (j % 4))) & 3) - 1) * d;
        }
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK;
        var level = Simd.Level;
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var y0 = y.Slice(i * 2 * ActivationBlocks.Q8_0Bytes, ActivationBlocks.Q8_0Bytes);
            var y1 = y.Slice((i * 2 + 1) * ActivationBlocks.Q8_0Bytes, ActivationBlocks.Q8_0Bytes);
            var (s0, s1) = level switch
            {
                SimdLevel.Avx512 => BlockSumsAvx512(xb[2..], y0[2..], y1[2..]),
                SimdLevel.Avx2 => (BlockSumAvx2(xb.Slice(2, 8), y0[2..]), BlockSumAvx2(xb.Slice(10, 8), y1[2..])),
                _ => (BlockSum(xb.Slice(2, 8), y0[2..]), BlockSum(xb.Slice(10, 8), y1[2..])),
            };
            float d0 = F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb));
            float sumi = MathF.FusedMultiplyAdd(F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(y0)), s0, 0f);
            sumi = MathF.FusedMultiplyAdd(F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(y1)), s1, sumi);
            sumf = MathF.FusedMultiplyAdd(sumi, d0, sumf);
        }
        return sumf;
    }

    /// <summary>Σ (code - 1) * q over the 32 weights in <paramref name="qs"/> (8 bytes) against one Q8_0 block's qs.</summary>
    private static int BlockSum(ReadOnlySpan<byte> qs, ReadOnlySpan<byte> qy)
    {
        int s = 0;
        for (int b = 0; b < 8; b++)
            for (int k = 0; k < 4; k++)
                s += (((qs[b] >> (2 * k)) & 3) - 1) * (sbyte)qy[b * 4 + k];
        return s;
    }
}
