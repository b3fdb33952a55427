using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q5_K
{
    // ggml's AVX2 layout (as Q4_K's, with 16 added where the fifth bit is set); the mins are summed as an integer
    // per block and accumulated as a scalar with a fused multiply-add, as ggml-cpu's build contracts it.
    private static float VecDotAvx2(ref byte x, ref byte y, int nb)
    {
        bool wide = QuantSimd.UseAvx512;
        Vector256<byte> m4 = Vector256.Create((byte)0xF);
        Vector256<byte> sixteen = Vector256.Create((byte)16);
        Vector256<float> acc = Vector256<float>.Zero;
        float summs = 0f;
        for (int i = 0; i < nb; ++i)
        {
            ref byte xb = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            float yd = Unsafe.ReadUnaligned<float>(ref yb);
            float d = yd * Half(ref xb, DOffset);
            float dmin = -yd * Half(ref xb, DminOffset);

            Q4_K.UnpackScalesMins(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref xb, ScalesOffset), 12), out uint u0, out uint u1, out uint u2, out uint u3);
            Vector256<short> minsAndScales = Avx2.ConvertToVector256Int16(Vector128.Create(u0, u1, u2, u3).AsByte());
            Vector256<short> q8sums = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, Q8_K.BsumsOffset)).AsInt16();
            Vector128<short> q8s = Ssse3.HorizontalAdd(q8sums.GetLower(), q8sums.GetUpper());
            Vector128<int> prod = Sse2.MultiplyAddAdjacent(minsAndScales.GetUpper(), q8s);
            summs = MathF.FusedMultiplyAdd(dmin, Vector128.Sum(prod), summs);

            Vector128<short> sc128 = minsAndScales.GetLower();
            Vector256<sbyte> scales = Vector256.Create(sc128, sc128).AsSByte();
            Vector256<byte> hbits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QhOffset));

            Vector256<int> sumi = Vector256<int>.Zero;
            if (wide)
            {
                // Two 64-quant chunks per step; same lane totals as the loop below.
                Vector512<sbyte> scales512 = Vector512.Create(scales, scales);
                Vector512<byte> hbits512 = Vector512.Create(hbits, hbits);
                Vector512<byte> m4w = Vector512.Create((byte)0xF);
                Vector512<byte> sixteenW = Vector512.Create((byte)16);
                Vector512<int> sumw = Vector512<int>.Zero;
                for (int j = 0; j < QK / 64; j += 2)
                {
                    Vector512<short> scale0 = Avx512BW.Shuffle(scales512, QuantSimd.ScaleShuffle32Pair(2 * j)).AsInt16();
                    Vector512<short> scale1 = Avx512BW.Shuffle(scales512, QuantSimd.ScaleShuffle32Pair(2 * j + 1)).AsInt16();
                    Vector512<byte> q5bits = Vector512.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
                    Vector512<byte> mask0 = Vector512.Create(Vector256.Create((byte)(1 << (2 * j))), Vector256.Create((byte)(1 << (2 * j + 2))));
                    Vector512<byte> mask1 = Vector512.Create(Vector256.Create((byte)(2 << (2 * j))), Vector256.Create((byte)(2 << (2 * j + 2))));
                    Vector512<byte> q50 = (q5bits & m4w) + (Avx512BW.CompareEqual(hbits512 & mask0, mask0) & sixteenW);
                    Vector512<byte> q51 = (Avx512BW.ShiftRightLogical(q5bits.AsUInt16(), 4).AsByte() & m4w) + (Avx512BW.CompareEqual(hbits512 & mask1, mask1) & sixteenW);
                    ref byte q8 = ref Unsafe.Add(ref yb, Q8_K.QsOffset + 64 * j);
                    Vector512<sbyte> q8l = Vector512.Create(Vector256.LoadUnsafe(ref q8), Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 64))).AsSByte();
                    Vector512<sbyte> q8h = Vector512.Create(Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32)), Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 96))).AsSByte();
                    Vector512<int> p0 = Avx512BW.MultiplyAddAdjacent(scale0, Avx512BW.MultiplyAddAdjacent(q50, q8l));
                    Vector512<int> p1 = Avx512BW.MultiplyAddAdjacent(scale1, Avx512BW.MultiplyAddAdjacent(q51, q8h));
                    sumw = Avx512F.Add(sumw, Avx512F.Add(p0, p1));
                }
                sumi = QuantSimd.Fold(sumw);
            }
            else for (int j = 0; j < QK / 64; ++j)
            {
                Vector256<short> scale0 = Avx2.Shuffle(scales, QuantSimd.ScaleShuffle32(2 * j)).AsInt16();
                Vector256<short> scale1 = Avx2.Shuffle(scales, QuantSimd.ScaleShuffle32(2 * j + 1)).AsInt16();
                Vector256<byte> q5bits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
                Vector256<byte> q5_0 = Avx2.Add(Avx2.And(q5bits, m4), HighBit(hbits, 2 * j, sixteen));
                Vector256<byte> q5_1 = Avx2.Add(Avx2.And(Avx2.ShiftRightLogical(q5bits.AsUInt16(), 4).AsByte(), m4), HighBit(hbits, 2 * j + 1, sixteen));
                ref byte q8 = ref Unsafe.Add(ref yb, Q8_K.QsOffset + 64 * j);
                Vector256<int> p0 = Avx2.MultiplyAddAdjacent(scale0, Avx2.MultiplyAddAdjacent(q5_0, Vector256.LoadUnsafe(ref q8).AsSByte()));
                Vector256<int> p1 = Avx2.MultiplyAddAdjacent(scale1, Avx2.MultiplyAddAdjacent(q5_1, Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32)).AsSByte()));
                sumi = Avx2.Add(sumi, Avx2.Add(p0, p1));
            }
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), acc);
        }
        return QuantSimd.HorizontalSum(acc) + summs;
    }

    // 16 where bit `bit` of each high-bit byte is set, else 0.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> HighBit(Vector256<byte> hbits, int bit, Vector256<byte> sixteen)
    {
        Vector256<byte> mask = Vector256.Create((byte)(1 << bit));
        return Avx2.And(Avx2.CompareEqual(Avx2.And(hbits, mask), mask), sixteen);
    }
}
