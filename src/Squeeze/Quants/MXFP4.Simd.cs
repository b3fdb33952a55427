using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class MXFP4Kernel
{
    internal static Vector128<sbyte> KValues128 => Vector128.Create(KValues);

    /// <summary>ggml's <c>mul_add_epi8</c>: |a| times b with a's sign, pairs added into 16 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<short> MulAdd(Vector256<sbyte> a, Vector256<sbyte> b) =>
        Avx2.MultiplyAddAdjacent(Avx2.Sign(a, a).AsByte(), Avx2.Sign(b, a));

    /// <summary>32 codes (16 bytes) to their doubled E2M1 values: low nibbles first, then high nibbles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (Vector128<sbyte> Low, Vector128<sbyte> High) Decode(Vector128<byte> q4, Vector128<sbyte> values)
    {
        var m4 = Vector128.Create((byte)0x0F);
        var lo = Ssse3.Shuffle(values, (q4 & m4).AsSByte());
        var hi = Ssse3.Shuffle(values, (Sse2.ShiftRightLogical(q4.AsUInt16(), 4).AsByte() & m4).AsSByte());
        return (lo, hi);
    }

    /// <summary>
    /// <see cref="BestIndex"/> for 8 weights at once, with the same candidates in the same order and the same strict
    /// comparison. Only half the codes can win: for x &gt;= 0 (or NaN) a negative code is never strictly nearer than
    /// its positive twin tried before it, and for x &lt; 0 a positive code is never nearer than code 0 (rounding is
    /// monotonic), so each lane tries code 0 and then the seven codes of its own sign.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BestIndex8(Vector256<float> x, float d)
    {
        var negative = Vector256.LessThan(x, Vector256<float>.Zero);
        var sign = negative & Vector256.Create(-0f);
        var offset = negative.AsInt32() & Vector256.Create(8);
        var bestErr = Vector256.Abs(Vector256.Create(KValues[0] * d) - x);
        var best = Vector256<int>.Zero;
        for (int k = 1; k < 8; k++)
        {
            var err = Vector256.Abs((Vector256.Create(KValues[k] * d) ^ sign) - x);
            var better = Vector256.LessThan(err, bestErr);
            bestErr = Vector256.ConditionalSelect(better, err, bestErr);
            best = Vector256.ConditionalSelect(better.AsInt32(), Vector256.Create(k) + offset, best);
        }
        return best;
    }

    /// <summary>dst[j] = code(lo[j]) | code(hi[j]) &lt;&lt; 4 for j &lt; 8.</summary>
    internal static void PackPairs8(ReadOnlySpan<float> lo, ReadOnlySpan<float> hi, float d, Span<byte> dst)
    {
        var packed = BestIndex8(Vector256.Create(lo[..8]), d) | (BestIndex8(Vector256.Create(hi[..8]), d) << 4);
        for (int j = 0; j < 8; j++) dst[j] = (byte)packed.GetElement(j);
    }

    private static unsafe float PairsAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb, ref int ib)
    {
        var values = KValues128;
        var ones = Vector256.Create((short)1);
        var acc1 = Vector256<float>.Zero;
        var acc2 = Vector256<float>.Zero;
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            for (; ib + 1 < nb; ib += 2)
            {
                byte* x0 = px + ib * BlockBytes, x1 = x0 + BlockBytes;
                byte* y0 = py + ib * ActivationBlocks.Q8_0Bytes, y1 = y0 + ActivationBlocks.Q8_0Bytes;
                var (l0, h0) = Decode(Sse2.LoadVector128(x0 + 1), values);
                var (l1, h1) = Decode(Sse2.LoadVector128(x1 + 1), values);
                var p0 = Avx2.MultiplyAddAdjacent(MulAdd(Vector256.Create(l0, h0), Avx.LoadVector256((sbyte*)y0 + 2)), ones);
                var p1 = Avx2.MultiplyAddAdjacent(MulAdd(Vector256.Create(l1, h1), Avx.LoadVector256((sbyte*)y1 + 2)), ones);
                var s0 = Vector256.Create(F16Kernel.ToFloat(*(ushort*)y0) * Numerics.E8M0.ToFloatHalf(x0[0]));
                var s1 = Vector256.Create(F16Kernel.ToFloat(*(ushort*)y1) * Numerics.E8M0.ToFloatHalf(x1[0]));
                acc1 = Fma.MultiplyAdd(s0, Avx.ConvertToVector256Single(p0), acc1);
                acc2 = Fma.MultiplyAdd(s1, Avx.ConvertToVector256Single(p1), acc2);
            }
        }
        return Lanes.Hsum8(acc1 + acc2);
    }
}
