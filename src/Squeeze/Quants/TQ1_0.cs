using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// TQ1_0 block layout (256 weights, 54 bytes), ternary packed in base 3:
//   qs 48 bytes   5 trits per byte, stored as ceil(v * 256 / 243) for the base-3 number v = t0 t1 t2 t3 t4 (t0 most
//                 significant); trit n of a byte is ((byte * 3^n mod 256) * 3) >> 8.
//                 bytes 0..31: trit n of byte m is weight 32n + m; bytes 32..47: trit n of byte 32 + m is weight 160 + 16n + m
//   qh  4 bytes   4 trits per byte (shifted up one trit): trit n of byte j is weight 240 + 4n + j
//   d   2 bytes   fp16 scale: the largest absolute value of the block
// Trits 0, 1, 2 mean -1, 0, +1. Rounding is lroundf; importance weights are ignored.

/// <summary>
/// Kernels of <see cref="GgmlType.TQ1_0"/> (1.6875 bits per weight). The dot product pairs a block with one Q8_K
/// block and reproduces ggml-cpu's AVX2 kernel, like TQ2_0's: trits times activations minus the activation group
/// sums in eight integer lanes, each scaled by <c>d * d_y</c> into a fused float accumulator.
/// </summary>
public sealed partial class TQ1_0Kernel : IQuantKernel
{
    private const int QK = GgmlTypes.QK_K;
    private const int BlockBytes = 54;
    private static ReadOnlySpan<byte> Pow3 => [1, 3, 9, 27, 81, 243];

    public GgmlType Type => GgmlType.TQ1_0;
    public GgmlType VecDotType => GgmlType.Q8_K;
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>MAX(a, b)</c> macro: <c>a &gt; b ? a : b</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Max(float a, float b) => a > b ? a : b;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = src.Length / QK;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var y = dst.Slice(i * BlockBytes, BlockBytes);
            float amax = 0f;
            for (int j = 0; j < QK; j++) amax = Max(amax, MathF.Abs(x[j]));
            float d = amax;
            float id = d != 0f ? 1f / d : 0f;
            BinaryPrimitives.WriteUInt16LittleEndian(y[52..], Fp16.FromFloat(d));
            for (int m = 0; m < 32; m++) y[m] = Pack(x, m, 32, 5, id, shift: false);
            for (int m = 0; m < 16; m++) y[32 + m] = Pack(x[160..], m, 16, 5, id, shift: false);
            for (int j = 0; j < 4; j++) y[48 + j] = Pack(x[240..], j, 4, 4, id, shift: true);
        }
    }

    // Base-3 number of `count` trits x[first + n * stride] (first trit most significant), then ceil(v * 256 / 243).
    private static byte Pack(ReadOnlySpan<float> x, int first, int stride, int count, float id, bool shift)
    {
        byte q = 0;
        for (int n = 0; n < count; n++)
        {
            int xi = (int)(GgmlRounding.LRound(x[first + n * stride] * id) + 1);
            q = (byte)(q * 3 + xi);
        }
        if (shift) q = (byte)(q * 3);
        return (byte)((q * 256 + (243 - 1)) / 243);
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = dst.Length / QK;
        Span<byte> codes = stackalloc byte[QK];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            float d = F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x[52..]));
            Codes(x, codes);
            var y = dst.Slice(i * QK, QK);
            for (int j = 0; j < QK; j++) y[j] = (codes[j] - 1) * d;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Trit(byte packed, int n) => (byte)(((byte)(packed * Pow3[n]) * 3) >> 8);

    /// <summary>The 256 trits (0..2) of a block, in weight order.</summary>
    private static void Codes(ReadOnlySpan<byte> block, Span<byte> codes)
    {
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 32; m++) codes[32 * n + m] = Trit(block[m], n);
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 16; m++) codes[160 + 16 * n + m] = Trit(block[32 + m], n);
        for (int n = 0; n < 4; n++)
            for (int j = 0; j < 4; j++) codes[240 + 4 * n + j] = Trit(block[48 + j], n);
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
            float d = BinaryPrimitives.ReadSingleLittleEndian(yb) * F16Kernel.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb[52..]));
            AccumulateLanes(codes, yb, d, acc);
        }
        return Lanes.Hsum8(acc);
    }

    /// <summary>
    /// The ternary kernels' lane arithmetic: lane m sums code * q over bytes 4m..4m+3 of each 32-byte chunk of the
    /// Q8_K block, minus bsums 2m and 2m+1 (which turns codes 0..2 into -1..1), then acc[m] += lane * d, fused.
    /// </summary>
    internal static void AccumulateLanes(ReadOnlySpan<byte> codes, ReadOnlySpan<byte> q8k, float d, Span<float> acc)
    {
        var qs = q8k.Slice(ActivationBlocks.Q8_KQs, QK);
        var bsums = q8k.Slice(ActivationBlocks.Q8_KBsums, 32);
        for (int m = 0; m < 8; m++)
        {
            int s = 0;
            for (int c = 0; c < 8; c++)
                for (int b = 4 * m; b < 4 * m + 4; b++)
                    s += codes[32 * c + b] * (sbyte)qs[32 * c + b];
            // ggml sums in 16-bit lanes; the true sum always fits (|s| < 8 * 2 * 3 * 128 + 2 * 16 * 128).
            s -= BinaryPrimitives.ReadInt16LittleEndian(bsums[(4 * m)..]) + BinaryPrimitives.ReadInt16LittleEndian(bsums[(4 * m + 2)..]);
            acc[m] = MathF.FusedMultiplyAdd(s, d, acc[m]);
        }
    }
}
