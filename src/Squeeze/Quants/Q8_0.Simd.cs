using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q8_0
{
    /// <summary>
    /// <c>(int8_t)roundf(x * id)</c> on 32 values (the element-wise part of the Q8_0/Q8_1 reference quantizers);
    /// returns the sum of the 32 quants (Q8_1 stores it).
    /// </summary>
    internal static unsafe int RoundBytesAvx2(float* x, float id, Span<byte> qs)
    {
        var vid = Vector256.Create(id);
        Vector256<int> Q(int o) => Avx.ConvertToVector256Int32WithTruncation(BlockStats.RoundAwayFromZero(Avx.Multiply(Vector256.Load(x + o), vid)));
        Vector256<int> q0 = Q(0), q1 = Q(8), q2 = Q(16), q3 = Q(24);
        Vector256.Narrow(Vector256.Narrow(q0, q1), Vector256.Narrow(q2, q3)).AsByte().CopyTo(qs);
        // the sum of the stored int8 values
        var s8 = (q0 << 24 >> 24) + (q1 << 24 >> 24) + (q2 << 24 >> 24) + (q3 << 24 >> 24);
        return Vector256.Sum(s8);
    }

    // One block per step: 32 byte products summed four to an int32 lane, scaled by dx*dy into eight float lanes.
    private static float VecDotAvx2(ref byte x, ref byte y, int nb, bool vnni)
    {
        Vector256<float> acc = Vector256<float>.Zero;
        for (int ib = 0; ib < nb; ++ib)
        {
            ref byte xb = ref Unsafe.Add(ref x, ib * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref y, ib * BlockBytes);
            Vector256<float> d = Vector256.Create(Half(ref xb, 0) * Half(ref yb, 0));
            Vector256<sbyte> qx = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, 2)).AsSByte();
            Vector256<sbyte> qy = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, 2)).AsSByte();
            Vector256<float> q = Avx.ConvertToVector256Single(QuantSimd.MulSumI8(qx, qy, vnni));
            acc = Fma.MultiplyAdd(d, q, acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }
}
