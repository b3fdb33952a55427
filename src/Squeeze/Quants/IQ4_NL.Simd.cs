using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ4_NL
{
    /// <summary>
    /// Expands 16 bytes of packed indices to the 32 signed levels in weight order (low nibbles then high nibbles)
    /// with one <c>pshufb</c> per half.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<sbyte> Expand(Vector128<byte> q4bits, Vector128<sbyte> values)
    {
        var m4b = Vector128.Create((byte)0x0f);
        var lo = Ssse3.Shuffle(values, (q4bits & m4b).AsSByte());
        var hi = Ssse3.Shuffle(values, (Sse2.ShiftRightLogical(q4bits.AsUInt16(), 4).AsByte() & m4b).AsSByte());
        return Vector256.Create(lo, hi);
    }

    /// <summary>
    /// ggml-cpu's <c>mul_add_epi8</c> followed by a pairwise add: per int32 lane the sum of four signed products.
    /// With AVX-VNNI one <c>vpdpbusd</c> gives the same sums (no int16 step saturates for these operands).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> DotQuads(Vector256<sbyte> x, Vector256<sbyte> y)
    {
        var ax = Avx2.Sign(x, x).AsByte();
        var sy = Avx2.Sign(y, x);
        if (AvxVnni.IsSupported) return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ax, sy);
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ax, sy), Vector256.Create((short)1));
    }

    private static unsafe float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK4_NL;
        int ib = 0;
        var accum1 = Vector256<float>.Zero;
        var accum2 = Vector256<float>.Zero;
        float sumf;
        fixed (sbyte* pv = Iq4Values.KValues)
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            var values = Sse2.LoadVector128(pv);
            for (; ib + 1 < nb; ib += 2)
            {
                byte* x1 = px + ib * BlockBytes, x2 = x1 + BlockBytes;
                byte* y1 = py + ib * IqDot.Q80Bytes, y2 = y1 + IqDot.Q80Bytes;
                var q4b_1 = Expand(Sse2.LoadVector128(x1 + 2), values);
                var q4b_2 = Expand(Sse2.LoadVector128(x2 + 2), values);
                var p_1 = DotQuads(q4b_1, Avx.LoadVector256((sbyte*)(y1 + 2)));
                var p_2 = DotQuads(q4b_2, Avx.LoadVector256((sbyte*)(y2 + 2)));
                accum1 = Fma.MultiplyAdd(Vector256.Create(Fp16.ToFloat(*(ushort*)y1) * Fp16.ToFloat(*(ushort*)x1)),
                    Avx.ConvertToVector256Single(p_1), accum1);
                accum2 = Fma.MultiplyAdd(Vector256.Create(Fp16.ToFloat(*(ushort*)y2) * Fp16.ToFloat(*(ushort*)x2)),
                    Avx.ConvertToVector256Single(p_2), accum2);
            }
            sumf = IqDot.HorizontalSum8(accum1 + accum2);
        }
        if (ib < nb)
        {
            // The odd last block, as in the scalar reference.
            var values = Iq4Values.KValues;
            var xb = x.Slice(ib * BlockBytes, BlockBytes);
            var yb = y.Slice(ib * IqDot.Q80Bytes, IqDot.Q80Bytes);
            float d = IqDot.Q80D(yb) * Fp16.ToFloat(System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(xb));
            var q8 = IqDot.Q80Qs(yb);
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < QK4_NL / 2; j++)
            {
                sumi1 += q8[j] * values[xb[2 + j] & 0xf];
                sumi2 += q8[j + QK4_NL / 2] * values[xb[2 + j] >> 4];
            }
            sumf = MathF.FusedMultiplyAdd(d, sumi1 + sumi2, sumf);
        }
        return sumf;
    }
}
