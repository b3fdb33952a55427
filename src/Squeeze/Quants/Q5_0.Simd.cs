using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q5_0
{
    /// <summary>
    /// The element-wise part of the Q5_0/Q5_1 reference quantizers on 32 values: the level
    /// <c>(int8)((x - sub) * id + add)</c>, capped at 31 for Q5_0 (<paramref name="cap"/>), its low nibbles packed two
    /// to a byte and its fifth bits gathered into <paramref name="qh"/> (bit j for element j).
    /// </summary>
    internal static unsafe void QuantizeFiveBitsAvx2(float* x, float id, float add, Span<byte> qs, out uint qh, float sub = 0f, bool subtract = false, bool cap = true)
    {
        var vid = Vector256.Create(id);
        var vadd = Vector256.Create(add);
        var vsub = Vector256.Create(sub);
        var v31 = Vector256.Create(31);
        Vector256<int> Level(int o)
        {
            var v = Vector256.Load(x + o);
            if (subtract) v = Avx.Subtract(v, vsub);
            var t = Avx.ConvertToVector256Int32WithTruncation(Avx.Add(Avx.Multiply(v, vid), vadd));
            if (!cap) return t & Vector256.Create(0xFF); // (uint8_t)
            t = Avx2.ShiftRightArithmetic(Avx2.ShiftLeftLogical(t, 24), 24); // (int8_t)
            return Avx2.Min(v31, t) & Vector256.Create(0xFF);
        }
        Vector256<int> l0 = Level(0), l1 = Level(8), l2 = Level(16), l3 = Level(24);
        var nib = Vector256.Create(0x0F);
        var s = Vector256.Narrow((l0 & nib) | ((l2 & nib) << 4), (l1 & nib) | ((l3 & nib) << 4));
        Vector128.Narrow(s.GetLower(), s.GetUpper()).AsByte().CopyTo(qs);
        Vector256<byte> all = Vector256.Narrow(Vector256.Narrow(l0, l1), Vector256.Narrow(l2, l3)).AsByte();
        qh = (uint)Avx2.MoveMask(Avx2.ShiftLeftLogical(all.AsUInt16(), 3).AsByte());
    }

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
