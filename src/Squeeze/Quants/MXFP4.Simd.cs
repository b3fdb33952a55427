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
