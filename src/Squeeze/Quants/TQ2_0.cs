using System.Buffers.Binary;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// TQ2_0 block layout (256 weights, 66 bytes), ternary:
//   qs 64 bytes   2-bit codes 0, 1, 2 meaning -1, 0, +1 (3 never written, decodes to +2): for half h (0, 1), field l
//                 (0..3) and m (0..31), weight 128h + 32l + m sits at bits 2l of byte 32h + m
//   d   2 bytes   fp16 scale: the largest absolute value of the block
// Rounding is lroundf; importance weights are ignored (quantize_tq2_0 calls the reference row quantizer).

/// <summary>
/// Kernels of <see cref="GgmlType.TQ2_0"/>. The dot product pairs a block with one Q8_K block and reproduces
/// ggml-cpu's AVX2 kernel: codes times activations minus the activation group sums (bsums) in eight integer
/// lanes, each lane scaled by <c>d * d_y</c> into a fused float accumulator.
/// </summary>
public sealed partial class TQ2_0Kernel : IQuantKernel
{
    private const int QK = GgmlTypes.QK_K;
    private const int BlockBytes = 66;

    public GgmlType Type => GgmlType.TQ2_0;
    public GgmlType VecDotType => GgmlType.Q8_K;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = src.Length / QK;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            float amax = 0f;
            for (int j = 0; j < QK; j++) amax = TQ1_0Kernel.Max(amax, MathF.Abs(x[j]));
            float d = amax;
            float id = d != 0f ? 1f / d : 0f;
            BinaryPrimitives.WriteUInt16LittleEndian(y[64..], Fp16.FromFloat(d));
            for (int h = 0; h < 2; h++)
                for (int m = 0; m < 32; m++)
                {
                    int q = 0;
                    for (int l = 0; l < 4; l++)
                    {
                        int xi = (int)(GgmlRounding.LRound(x[128 * h + 32 * l + m] * id) + 1);
                        q += (xi & 3) << (2 * l);
                    }
                    y[32 * h + m] = (byte)q;
                }
        }
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = dst.Length / QK;
        Span<byte> codes = stackalloc byte[QK];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            float d = F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x[64..]));
            Codes(x, codes);
            var y = dst.Slice(i * QK, QK);
            for (int j = 0; j < QK; j++) y[j] = (codes[j] - 1) * d;
        }
    }

    /// <summary>The 256 codes (0..3) of a block, in weight order.</summary>
    private static void Codes(ReadOnlySpan<byte> block, Span<byte> codes)
    {
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++)
                    codes[128 * h + 32 * l + m] = (byte)((block[32 * h + m] >> (2 * l)) & 3);
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK;
        if (Simd.Level == SimdLevel.Avx512) return VecDotAvx512(x, y, nb);
        if (Simd.Level >= SimdLevel.Avx2) return VecDotAvx2(x, y, nb);
        Span<byte> codes = stackalloc byte[QK];
        Span<float> acc = stackalloc float[8];
        acc.Clear();
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var yb = y.Slice(i * ActivationBlocks.Q8_KBytes, ActivationBlocks.Q8_KBytes);
            Codes(xb, codes);
            float d = BinaryPrimitives.ReadSingleLittleEndian(yb) * F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb[64..]));
            TQ1_0Kernel.AccumulateLanes(codes, yb, d, acc);
        }
        return Lanes.Hsum8(acc);
    }
}
