using System.Buffers.Binary;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// NVFP4 block layout (64 weights in 4 sub-blocks of 16, 36 bytes):
//   d   4 bytes   UE4M3 scale of each 16-weight sub-block
//   qs 32 bytes   E2M1 codes, 4 bits each, 8 bytes per sub-block s: weight t (t < 8) of the sub-block in the low
//                 nibble of byte 8s + t, weight t + 8 in its high nibble
// Codes index kvalues_fp4 = 2 * E2M1 value; ggml's UE4M3 decoder returns half the scale to compensate.
// Importance weights are ignored (quantize_nvfp4 calls the reference row quantizer).

/// <summary>
/// Kernels of <see cref="GgmlType.NVFP4"/>. Each sub-block's scale is <c>amax / 6</c> encoded as UE4M3 (ggml's
/// rounding), and each weight takes the nearest code against the decoded scale. The dot product pairs each block
/// with two Q8_0 blocks and reproduces ggml-cpu's AVX2 kernel: one 8-lane fused accumulator, lanes 0-3 scaled by
/// the first sub-block's scale and lanes 4-7 by the second of each Q8_0 block.
/// </summary>
public sealed partial class NVFP4Kernel : IQuantKernel
{
    private const int QK = 64;
    private const int QKSub = 16;
    private const int BlockBytes = 36;

    public GgmlType Type => GgmlType.NVFP4;
    public GgmlType VecDotType => GgmlType.Q8_0;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = src.Length / QK;
        for (int i = 0; i < nb; i++)
        {
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            for (int s = 0; s < QK / QKSub; s++)
            {
                var xb = src.Slice(i * QK + s * QKSub, QKSub);
                float amax = 0f;
                for (int j = 0; j < QKSub; j++)
                    if (amax < MathF.Abs(xb[j])) amax = MathF.Abs(xb[j]);
                byte ue = UE4M3.FromFloat(amax / 6f);
                y[s] = ue;
                float d = UE4M3.ToFloatHalf(ue);
                if (Simd.Level >= SimdLevel.Avx2)
                {
                    MXFP4Kernel.PackPairs8(xb[..8], xb[8..], d, y[(4 + s * (QKSub / 2))..]);
                    continue;
                }
                for (int j = 0; j < QKSub / 2; j++)
                    y[4 + s * (QKSub / 2) + j] = (byte)(MXFP4Kernel.BestIndex(xb[j], d) | (MXFP4Kernel.BestIndex(xb[j + QKSub / 2], d) << 4));
            }
        }
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var kv = MXFP4Kernel.KValues;
        int nb = dst.Length / QK;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            for (int s = 0; s < QK / QKSub; s++)
            {
                float d = UE4M3.ToFloatHalf(x[s]);
                var yb = dst.Slice(i * QK + s * QKSub, QKSub);
                for (int j = 0; j < QKSub / 2; j++)
                {
                    byte q = x[4 + s * (QKSub / 2) + j];
                    yb[j] = kv[q & 0x0F] * d;
                    yb[j + QKSub / 2] = kv[q >> 4] * d;
                }
            }
        }
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n) =>
        // AVX-512 runs the AVX2 code, for the reason given in MXFP4Kernel.VecDot.
        Simd.Level >= SimdLevel.Avx2 ? VecDotAvx2(x, y, n / QK) : VecDotScalar(x, y, n / QK);

    private static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        Span<float> acc = stackalloc float[8];
        acc.Clear();
        for (int ib = 0; ib < nb; ib++)
        {
            var xb = x.Slice(ib * BlockBytes, BlockBytes);
            for (int h = 0; h < 2; h++)
            {
                var yb = y.Slice((2 * ib + h) * ActivationBlocks.Q8_0Bytes, ActivationBlocks.Q8_0Bytes);
                float dy = F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(yb));
                // Lane m holds weights 4m..4m+3 of this Q8_0 block: sub-block 2h + m / 4.
                for (int m = 0; m < 8; m++)
                {
                    int sub = 2 * h + m / 4;
                    float scale = UE4M3.ToFloatHalf(xb[sub]) * dy;
                    int s = 0;
                    for (int j = 4 * m; j < 4 * m + 4; j++)
                    {
                        int t = j % QKSub;
                        byte q = xb[4 + sub * (QKSub / 2) + t % 8];
                        int code = t < 8 ? q & 0xF : q >> 4;
                        s += MXFP4Kernel.SignedProduct(MXFP4Kernel.KValues[code], (sbyte)yb[2 + j]);
                    }
                    acc[m] = MathF.FusedMultiplyAdd(scale, s, acc[m]);
                }
            }
        }
        return Lanes.Hsum8(acc);
    }
}
