using System.Buffers.Binary;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// MXFP4 block layout (32 weights, 17 bytes), OCP microscaling FP4:
//   e   1 byte    E8M0 shared exponent: the block scale is 2^(e - 127)
//   qs 16 bytes   E2M1 codes, 4 bits each: weight j (j < 16) in the low nibble of byte j, weight j + 16 in its high nibble
// Codes index kvalues_fp4 = 2 * E2M1 value, so the scale used with them is 2^(e - 128).
// Importance weights are ignored (quantize_mxfp4 calls the reference row quantizer).

/// <summary>
/// Kernels of <see cref="GgmlType.MXFP4"/>. The exponent is <c>floor(log2(amax)) - 2</c>, which puts the block
/// maximum in [4, 8) times the scale (E2M1's top value is 6), and each weight takes the nearest of the 16 codes
/// (first wins on ties). The dot product pairs each block with one Q8_0 block and reproduces ggml-cpu's AVX2
/// kernel: pairs of blocks feed two 8-lane fused accumulators, an odd last block is added in scalar.
/// </summary>
public sealed partial class MXFP4Kernel : IQuantKernel
{
    private const int QK = 32;
    private const int BlockBytes = 17;

    /// <summary>E2M1 values doubled (ggml-common.h <c>kvalues_fp4</c>), shared with NVFP4.</summary>
    internal static ReadOnlySpan<sbyte> KValues => [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

    public GgmlType Type => GgmlType.MXFP4;
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
                if (amax < MathF.Abs(x[j])) amax = MathF.Abs(x[j]);
            // ggml computes this in float and converts to uint8_t; x86 truncates through a 32-bit integer.
            byte e = amax > 0f ? (byte)GgmlRounding.TruncateToInt(MathF.Floor(MathF.Log2(amax)) - 2 + 127) : (byte)0;
            float d = E8M0.ToFloatHalf(e);
            y[0] = e;
            if (Simd.Level >= SimdLevel.Avx2)
            {
                PackPairs8(x[..8], x[16..24], d, y[1..]);
                PackPairs8(x[8..16], x[24..32], d, y[9..]);
                continue;
            }
            for (int j = 0; j < QK / 2; j++)
                y[1 + j] = (byte)(BestIndex(x[j], d) | (BestIndex(x[j + QK / 2], d) << 4));
        }
    }

    /// <summary>The code whose value times <paramref name="d"/> is nearest <paramref name="x"/>; the lowest index wins ties.</summary>
    internal static int BestIndex(float x, float d)
    {
        var kv = KValues;
        int best = 0;
        float bestErr = MathF.Abs(kv[0] * d - x);
        for (int i = 1; i < 16; i++)
        {
            float err = MathF.Abs(kv[i] * d - x);
            if (err < bestErr)
            {
                best = i;
                bestErr = err;
            }
        }
        return best;
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var kv = KValues;
        int nb = dst.Length / QK;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            float d = E8M0.ToFloatHalf(x[0]);
            var y = dst.Slice(i * QK, QK);
            for (int j = 0; j < QK / 2; j++)
            {
                y[j] = kv[x[1 + j] & 0x0F] * d;
                y[j + QK / 2] = kv[x[1 + j] >> 4] * d;
            }
        }
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK;
        int ib = 0;
        // AVX-512 runs the AVX2 code: it lacks psignb, and a 512-bit version (sign by compare and blend, the pair
        // assembled from 128-bit pieces) measured slower; the float steps would be the same anyway.
        float sumf = Simd.Level >= SimdLevel.Avx2 ? PairsAvx2(x, y, nb, ref ib) : PairsScalar(x, y, nb, ref ib);
        for (; ib < nb; ib++)
        {
            var xb = x.Slice(ib * BlockBytes, BlockBytes);
            var yb = y.Slice(ib * ActivationBlocks.Q8_0Bytes, ActivationBlocks.Q8_0Bytes);
            float d = F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(yb)) * E8M0.ToFloatHalf(xb[0]);
            int sumi = 0;
            for (int j = 0; j < QK / 2; j++)
            {
                sumi += (sbyte)yb[2 + j] * KValues[xb[1 + j] & 0xF];
                sumi += (sbyte)yb[2 + j + QK / 2] * KValues[xb[1 + j] >> 4];
            }
            sumf = MathF.FusedMultiplyAdd(d, sumi, sumf);
        }
        return sumf;
    }

    private static float PairsScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb, ref int ib)
    {
        Span<float> acc1 = stackalloc float[8];
        Span<float> acc2 = stackalloc float[8];
        acc1.Clear();
        acc2.Clear();
        for (; ib + 1 < nb; ib += 2)
        {
            AccumulateScalar(x.Slice(ib * BlockBytes, BlockBytes), y.Slice(ib * ActivationBlocks.Q8_0Bytes, ActivationBlocks.Q8_0Bytes), acc1);
            AccumulateScalar(x.Slice((ib + 1) * BlockBytes, BlockBytes), y.Slice((ib + 1) * ActivationBlocks.Q8_0Bytes, ActivationBlocks.Q8_0Bytes), acc2);
        }
        for (int m = 0; m < 8; m++) acc1[m] += acc2[m];
        return Lanes.Hsum8(acc1);
    }

    // Lane m holds weights 4m..4m+3 of the block (low nibbles are weights 0..15, high nibbles 16..31).
    private static void AccumulateScalar(ReadOnlySpan<byte> xb, ReadOnlySpan<byte> yb, Span<float> acc)
    {
        float scale = F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(yb)) * E8M0.ToFloatHalf(xb[0]);
        for (int m = 0; m < 8; m++)
        {
            int s = 0;
            for (int j = 4 * m; j < 4 * m + 4; j++)
            {
                int code = j < 16 ? xb[1 + j] & 0xF : xb[1 + j - 16] >> 4;
                s += SignedProduct(KValues[code], (sbyte)yb[2 + j]);
            }
            acc[m] = MathF.FusedMultiplyAdd(scale, s, acc[m]);
        }
    }

    /// <summary>
    /// <c>v * q</c> as ggml's <c>mul_add_epi8</c> forms it: |v| times q with v's sign applied in 8 bits, so that
    /// -(-128) stays -128 (Q8_0 rows from ggml never hold -128, but random bytes may).
    /// </summary>
    internal static int SignedProduct(sbyte v, sbyte q) =>
        Math.Abs(v) * (v < 0 ? (sbyte)-q : v == 0 ? 0 : q);
}
