using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q5_0
{
    // The fifth bit is folded in as 0xF0 where it is clear, which makes the byte q - 16 in two's complement.
    private static float VecDotAvx2(ref byte x, ref byte y, int nb, bool vnni)
    {
        Vector256<float> acc = Vector256<float>.Zero;
        Vector256<byte> highNibble = Vector256.Create((byte)0xF0);
        for (int ib = 0; ib < nb; ++ib)
        {
            ref byte xb = ref Unsafe.Add(ref x, ib * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref y, ib * Q8_0.BlockBytes);
            Vector256<float> d = Vector256.Create(Half(ref xb, 0) * Half(ref yb, 0));
            Vector256<byte> qx = QuantSimd.BytesFromNibbles(ref Unsafe.Add(ref xb, 6));
            Vector256<byte> bxhi = QuantSimd.BytesFromBits(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xb, 2)));
            qx = Avx2.Or(qx, Avx2.AndNot(bxhi, highNibble));
            Vector256<sbyte> qy = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, 2)).AsSByte();
            Vector256<float> q = Avx.ConvertToVector256Single(QuantSimd.MulSumI8(qx.AsSByte(), qy, vnni));
            acc = Fma.MultiplyAdd(d, q, acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }
}
