using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q4_1
{
    // Unsigned nibbles times the signed Q8_1 bytes; the min enters through y's precomputed s = d * sum(qs),
    // summed separately in block order as ggml's AVX2 kernel does.
    private static float VecDotAvx2(ref byte x, ref byte y, int nb, bool vnni)
    {
        Vector256<float> acc = Vector256<float>.Zero;
        float summs = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            ref byte xb = ref Unsafe.Add(ref x, ib * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref y, ib * Q8_1.BlockBytes);
            float d0 = Half(ref xb, 0), d1 = Half(ref yb, 0);
            summs = MathF.FusedMultiplyAdd(Half(ref xb, 2), Half(ref yb, 2), summs); // ggml-cpu is built with FMA contraction here
            Vector256<float> d0d1 = Vector256.Create(d0 * d1);
            Vector256<byte> qx = QuantSimd.BytesFromNibbles(ref Unsafe.Add(ref xb, 4));
            Vector256<sbyte> qy = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, 4)).AsSByte();
            Vector256<float> xy = Avx.ConvertToVector256Single(QuantSimd.MulSumUs8(qx, qy, vnni));
            acc = Fma.MultiplyAdd(d0d1, xy, acc);
        }
        return QuantSimd.HorizontalSum(acc) + summs;
    }
}
