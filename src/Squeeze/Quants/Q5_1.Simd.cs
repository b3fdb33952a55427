using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q5_1
{
    // Unsigned 5-bit values (nibble | 0x10 where the fifth bit is set) times the signed Q8_1 bytes.
    private static float VecDotAvx2(ref byte x, ref byte y, int nb, bool vnni)
    {
        Vector256<float> acc = Vector256<float>.Zero;
        Vector256<byte> bit4 = Vector256.Create((byte)0x10);
        float summs = 0.0f;
        for (int ib = 0; ib < nb; ++ib)
        {
            ref byte xb = ref Unsafe.Add(ref x, ib * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref y, ib * Q8_1.BlockBytes);
            float dx = Half(ref xb, 0);
            summs = MathF.FusedMultiplyAdd(Half(ref xb, 2), Half(ref yb, 2), summs); // ggml-cpu is built with FMA contraction here
            Vector256<byte> qx = QuantSimd.BytesFromNibbles(ref Unsafe.Add(ref xb, 8));
            Vector256<byte> bxhi = QuantSimd.BytesFromBits(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xb, 4)));
            qx = Avx2.Or(qx, Avx2.And(bxhi, bit4));
            float dy = Half(ref yb, 0);
            Vector256<sbyte> qy = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, 4)).AsSByte();
            Vector256<float> q = Avx.ConvertToVector256Single(QuantSimd.MulSumUs8(qx, qy, vnni));
            acc = Fma.MultiplyAdd(q, Vector256.Create(dx * dy), acc);
        }
        return QuantSimd.HorizontalSum(acc) + summs;
    }
}
