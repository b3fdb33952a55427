using System.Buffers.Binary;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// Q1_0 block layout (128 weights, 18 bytes):
//   d   2 bytes   fp16  scale: the mean absolute value of the block's weights
//   qs 16 bytes         one sign bit per weight, weight j at bit (j % 8) of byte (j / 8); 1 means +d, 0 means -d
// Importance weights are ignored (quantize_q1_0 calls the reference row quantizer).

/// <summary>
/// Kernels of <see cref="GgmlType.Q1_0"/>: 1-bit signs with one fp16 magnitude per 128 weights. The dot product
/// pairs each block with four Q8_0 blocks and reproduces ggml-cpu's AVX2 kernel: per Q8_0 block, eight lanes of
/// four signed activations each, scaled by the activation scale and chained with fused multiply-adds, then
/// scaled by <c>d</c> into eight running lanes summed at the end.
/// </summary>
public sealed partial class Q1_0Kernel : IQuantKernel
{
    private const int QK = 128;
    private const int BlockBytes = 18;

    public GgmlType Type => GgmlType.Q1_0;
    public GgmlType VecDotType => GgmlType.Q8_0;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = src.Length / QK;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            float sumAbs = 0f;
            for (int j = 0; j < QK; j++) sumAbs += MathF.Abs(x[j]);
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(sumAbs / QK));
            var qs = y[2..];
            if (Simd.Level >= SimdLevel.Avx2)
            {
                SignBits(x, qs);
                continue;
            }
            for (int b = 0; b < QK / 8; b++)
            {
                int bits = 0;
                for (int k = 0; k < 8; k++)
                    if (x[b * 8 + k] >= 0f) bits |= 1 << k;
                qs[b] = (byte)bits;
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
            float negD = -d;
            var y = dst.Slice(i * QK, QK);
            for (int j = 0; j < QK; j++) y[j] = ((x[2 + j / 8] >> (j % 8)) & 1) != 0 ? d : negD;
        }
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n) =>
        Simd.Level switch
        {
            SimdLevel.Avx512 => VecDotAvx512(x, y, n / QK),
            SimdLevel.Avx2 => VecDotAvx2(x, y, n / QK),
            _ => VecDotScalar(x, y, n / QK),
        };

    private static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        Span<float> acc = stackalloc float[8];
        Span<float> accBlock = stackalloc float[8];
        acc.Clear();
        for (int ib = 0; ib < nb; ib++)
        {
            var xb = x.Slice(ib * BlockBytes, BlockBytes);
            float d0 = F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb));
            for (int k = 0; k < 4; k++)
            {
                var yb = y.Slice((ib * 4 + k) * ActivationBlocks.Q8_0Bytes, ActivationBlocks.Q8_0Bytes);
                float dy = F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(yb));
                for (int m = 0; m < 8; m++)
                {
                    int s = 0;
                    for (int j = 4 * m; j < 4 * m + 4; j++)
                    {
                        sbyte q = (sbyte)yb[2 + j];
                        // ggml negates in 8 bits (xor and subtract), so -(-128) stays -128.
                        s += ((xb[2 + k * 4 + j / 8] >> (j % 8)) & 1) != 0 ? q : (sbyte)-q;
                    }
                    accBlock[m] = k == 0 ? dy * s : MathF.FusedMultiplyAdd(dy, s, accBlock[m]);
                }
            }
            for (int m = 0; m < 8; m++) acc[m] = MathF.FusedMultiplyAdd(d0, accBlock[m], acc[m]);
        }
        return Lanes.Hsum8(acc);
    }
}
