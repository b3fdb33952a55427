using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q4_0
{
    // Nibbles to bytes, minus 8, then a signed byte dot product with the Q8_0 block, as ggml's AVX2 kernel.
    private static float VecDotAvx2(ref byte x, ref byte y, int nb, bool vnni)
    {
        Vector256<float> acc = Vector256<float>.Zero;
        Vector256<byte> off = Vector256.Create((byte)8);
        for (int ib = 0; ib < nb; ++ib)
        {
            ref byte xb = ref Unsafe.Add(ref x, ib * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref y, ib * Q8_0.BlockBytes);
            Vector256<float> d = Vector256.Create(Half(ref xb, 0) * Half(ref yb, 0));
            Vector256<sbyte> qx = Avx2.Subtract(QuantSimd.BytesFromNibbles(ref Unsafe.Add(ref xb, 2)), off).AsSByte();
            Vector256<sbyte> qy = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, 2)).AsSByte();
            Vector256<float> q = Avx.ConvertToVector256Single(QuantSimd.MulSumI8(qx, qy, vnni));
            acc = Fma.MultiplyAdd(d, q, acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }
}
