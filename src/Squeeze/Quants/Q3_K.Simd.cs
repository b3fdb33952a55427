using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q3_K
{
    // ggml's AVX2 layout: the 2-bit part and the "minus 4 where the high bit is clear" part are multiplied with
    // the Q8_K bytes separately (both unsigned-by-signed) and subtracted as int16, then scaled per group of 16.
    private static float VecDotAvx2(ref byte x, ref byte y, int nb)
    {
        Vector256<byte> m3 = Vector256.Create((byte)3);
        Vector128<sbyte> m32 = Vector128.Create((sbyte)32);
        Vector256<float> acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; ++i)
        {
            ref byte xb = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            float d = Unsafe.ReadUnaligned<float>(ref yb) * Half(ref xb, DOffset);

            UnpackScales(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref xb, ScalesOffset), 12), out uint a0, out uint a1, out uint a2, out uint a3);
            Vector128<sbyte> scales128 = Sse2.Subtract(Vector128.Create(a0, a1, a2, a3).AsSByte(), m32);
            Vector256<short> allScales = Avx2.ConvertToVector256Int16(scales128);
            Vector256<sbyte> lScales = Vector256.Create(allScales.GetLower(), allScales.GetLower()).AsSByte();
            Vector256<sbyte> hScales = Vector256.Create(allScales.GetUpper(), allScales.GetUpper()).AsSByte();

            Vector256<byte> hbits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, HmaskOffset));
            Vector256<int> sumi = Vector256<int>.Zero;
            int bit = 0;
            for (int j = 0; j < QK / 128; ++j)
            {
                Vector256<sbyte> scales = j == 0 ? lScales : hScales;
                Vector256<byte> q3bits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
                ref byte q8 = ref Unsafe.Add(ref yb, Q8_K.QsOffset + 128 * j);
                Vector256<int> p0 = Chunk(Avx2.And(q3bits, m3), hbits, bit++, ref q8, scales, 0);
                Vector256<int> p1 = Chunk(Avx2.And(Avx2.ShiftRightLogical(q3bits.AsUInt16(), 2).AsByte(), m3), hbits, bit++, ref Unsafe.Add(ref q8, 32), scales, 1);
                Vector256<int> p2 = Chunk(Avx2.And(Avx2.ShiftRightLogical(q3bits.AsUInt16(), 4).AsByte(), m3), hbits, bit++, ref Unsafe.Add(ref q8, 64), scales, 2);
                Vector256<int> p3 = Chunk(Avx2.And(Avx2.ShiftRightLogical(q3bits.AsUInt16(), 6).AsByte(), m3), hbits, bit++, ref Unsafe.Add(ref q8, 96), scales, 3);
                Vector256<int> p01 = Avx2.Add(p0, p1), p23 = Avx2.Add(p2, p3);
                sumi = Avx2.Add(sumi, Avx2.Add(p01, p23));
            }
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }

    // One 32-byte chunk: 2-bit values q3l, and 4 where bit `bit` of the high-bit mask is clear (the -4 offset).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Chunk(Vector256<byte> q3l, Vector256<byte> hbits, int bit, ref byte q8, Vector256<sbyte> scales, int k)
    {
        Vector256<byte> clear = Avx2.CompareEqual(Avx2.And(hbits, Vector256.Create((byte)(1 << bit))), Vector256<byte>.Zero);
        Vector256<byte> q3h = Avx2.And(clear, Vector256.Create((byte)4));
        Vector256<sbyte> q8k = Vector256.LoadUnsafe(ref q8).AsSByte();
        Vector256<short> p16 = Avx2.Subtract(Avx2.MultiplyAddAdjacent(q3l, q8k), Avx2.MultiplyAddAdjacent(q3h, q8k));
        return Avx2.MultiplyAddAdjacent(Avx2.Shuffle(scales, QuantSimd.ScaleShuffle16(k)).AsInt16(), p16);
    }
}
