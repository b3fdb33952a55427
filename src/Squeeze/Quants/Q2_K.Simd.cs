using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q2_K
{
    // ggml's AVX2 layout: per 32-byte chunk of 2-bit values, unsigned-by-signed byte products summed in pairs,
    // then multiplied by the group scale (int16) and summed in pairs again, so int32 lane k holds bytes 4k..4k+3
    // of every chunk. The mins enter through Q8_K's group sums, into the same float accumulator first.
    private static float VecDotAvx2(ref byte x, ref byte y, int nb)
    {
        Vector256<byte> m3 = Vector256.Create((byte)3);
        Vector128<byte> m4 = Vector128.Create((byte)0xF);
        Vector256<float> acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; ++i)
        {
            ref byte xb = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            float yd = Unsafe.ReadUnaligned<float>(ref yb);
            float d = yd * Half(ref xb, DOffset);
            float dmin = -yd * Half(ref xb, DminOffset);

            Vector128<byte> minsAndScales = Vector128.LoadUnsafe(ref Unsafe.Add(ref xb, ScalesOffset));
            Vector128<byte> scales8 = Sse2.And(minsAndScales, m4);
            Vector128<byte> mins8 = Sse2.And(Sse2.ShiftRightLogical(minsAndScales.AsUInt16(), 4).AsByte(), m4);
            Vector256<short> mins = Avx2.ConvertToVector256Int16(mins8.AsSByte());
            Vector256<short> bsums = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, Q8_K.BsumsOffset)).AsInt16();
            Vector256<int> prod = Avx2.MultiplyAddAdjacent(mins, bsums);
            acc = Fma.MultiplyAdd(Vector256.Create(dmin), Avx.ConvertToVector256Single(prod), acc);

            Vector256<short> allScales = Avx2.ConvertToVector256Int16(scales8.AsSByte());
            Vector256<sbyte> lScales = Vector256.Create(allScales.GetLower(), allScales.GetLower()).AsSByte();
            Vector256<sbyte> hScales = Vector256.Create(allScales.GetUpper(), allScales.GetUpper()).AsSByte();

            Vector256<int> sumi = Vector256<int>.Zero;
            for (int j = 0; j < QK / 128; ++j)
            {
                Vector256<sbyte> scales = j == 0 ? lScales : hScales;
                Vector256<byte> q2bits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
                ref byte q8 = ref Unsafe.Add(ref yb, Q8_K.QsOffset + 128 * j);
                Vector256<int> p0 = Chunk(Avx2.And(q2bits, m3), ref q8, scales, 0);
                Vector256<int> p1 = Chunk(Avx2.And(Avx2.ShiftRightLogical(q2bits.AsUInt16(), 2).AsByte(), m3), ref Unsafe.Add(ref q8, 32), scales, 1);
                Vector256<int> p2 = Chunk(Avx2.And(Avx2.ShiftRightLogical(q2bits.AsUInt16(), 4).AsByte(), m3), ref Unsafe.Add(ref q8, 64), scales, 2);
                Vector256<int> p3 = Chunk(Avx2.And(Avx2.ShiftRightLogical(q2bits.AsUInt16(), 6).AsByte(), m3), ref Unsafe.Add(ref q8, 96), scales, 3);
                sumi = Avx2.Add(sumi, Avx2.Add(Avx2.Add(p0, p1), Avx2.Add(p2, p3)));
            }
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Chunk(Vector256<byte> q, ref byte q8, Vector256<sbyte> scales, int p)
    {
        Vector256<short> p16 = Avx2.MultiplyAddAdjacent(q, Vector256.LoadUnsafe(ref q8).AsSByte());
        return Avx2.MultiplyAddAdjacent(Avx2.Shuffle(scales, QuantSimd.ScaleShuffle16(p)).AsInt16(), p16);
    }
}
