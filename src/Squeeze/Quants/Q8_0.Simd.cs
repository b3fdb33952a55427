using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q8_0
{
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
