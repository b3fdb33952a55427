using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q4_0
{
    /// <summary>
    /// The element-wise part of the Q4_0/Q4_1 reference quantizers on 32 values: <c>min(15, (int8)((x - sub) * id + add))</c>
    /// (C's truncating conversion, as cvttps2dq does it), packed two to a byte. Each lane computes exactly the scalar
    /// expression, so the bytes are the same.
    /// </summary>
    internal static unsafe void QuantizeNibblesAvx2(float* x, float id, float add, Span<byte> qs, float sub = 0f, bool subtract = false)
    {
        var vid = Vector256.Create(id);
        var vadd = Vector256.Create(add);
        var vsub = Vector256.Create(sub);
        var v15 = Vector256.Create(15);
        Vector256<int> Level(int o)
        {
            var v = Vector256.Load(x + o);
            if (subtract) v = Avx.Subtract(v, vsub);
            var t = Avx.ConvertToVector256Int32WithTruncation(Avx.Add(Avx.Multiply(v, vid), vadd));
            t = Avx2.ShiftRightArithmetic(Avx2.ShiftLeftLogical(t, 24), 24); // (int8_t)
            return Avx2.Min(v15, t);
        }
        var c0 = Level(0) | (Level(16) << 4);
        var c1 = Level(8) | (Level(24) << 4);
        var s = Vector256.Narrow(c0, c1);
        Vector128.Narrow(s.GetLower(), s.GetUpper()).AsByte().CopyTo(qs);
    }

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
