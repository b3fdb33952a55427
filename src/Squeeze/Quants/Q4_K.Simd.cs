using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q4_K
{
    // ggml's AVX2 layout: per 32-byte chunk, nibbles times Q8_K bytes summed in pairs, times the group scale
    // (int16) summed in pairs again. The mins go into a separate 4-lane accumulator through pairwise Q8_K sums.
    private static float VecDotAvx2(ref byte x, ref byte y, int nb)
    {
        bool wide = QuantSimd.UseAvx512;
        Vector256<byte> m4 = Vector256.Create((byte)0xF);
        Vector256<float> acc = Vector256<float>.Zero;
        Vector128<float> accM = Vector128<float>.Zero;
        for (int i = 0; i < nb; ++i)
        {
            ref byte xb = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            float yd = Unsafe.ReadUnaligned<float>(ref yb);
            float d = yd * Half(ref xb, DOffset);
            float dmin = -yd * Half(ref xb, DminOffset);

            UnpackScalesMins(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref xb, ScalesOffset), 12), out uint u0, out uint u1, out uint u2, out uint u3);
            Vector256<short> minsAndScales = Avx2.ConvertToVector256Int16(Vector128.Create(u0, u1, u2, u3).AsByte());
            Vector256<short> q8sums = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, Q8_K.BsumsOffset)).AsInt16();
            Vector128<short> q8s = Ssse3.HorizontalAdd(q8sums.GetLower(), q8sums.GetUpper());
            Vector128<int> prod = Sse2.MultiplyAddAdjacent(minsAndScales.GetUpper(), q8s);
            accM = Fma.MultiplyAdd(Vector128.Create(dmin), Sse2.ConvertToVector128Single(prod), accM);

            Vector128<short> sc128 = minsAndScales.GetLower();
            Vector256<sbyte> scales = Vector256.Create(sc128, sc128).AsSByte();

            Vector256<int> sumi = Vector256<int>.Zero;
            if (wide)
            {
                // Two 64-quant chunks per step; same lane totals as the loop below.
                Vector512<sbyte> scales512 = Vector512.Create(scales, scales);
                Vector512<byte> m4w = Vector512.Create((byte)0xF);
                Vector512<int> sumw = Vector512<int>.Zero;
                for (int j = 0; j < QK / 64; j += 2)
                {
                    Vector512<short> scaleL = Avx512BW.Shuffle(scales512, QuantSimd.ScaleShuffle32Pair(2 * j)).AsInt16();
                    Vector512<short> scaleH = Avx512BW.Shuffle(scales512, QuantSimd.ScaleShuffle32Pair(2 * j + 1)).AsInt16();
                    Vector512<byte> q4bits = Vector512.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
                    Vector512<byte> q4l = q4bits & m4w;
                    Vector512<byte> q4h = Avx512BW.ShiftRightLogical(q4bits.AsUInt16(), 4).AsByte() & m4w;
                    ref byte q8 = ref Unsafe.Add(ref yb, Q8_K.QsOffset + 64 * j);
                    Vector512<sbyte> q8l = Vector512.Create(Vector256.LoadUnsafe(ref q8), Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 64))).AsSByte();
                    Vector512<sbyte> q8h = Vector512.Create(Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32)), Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 96))).AsSByte();
                    Vector512<int> p16l = Avx512BW.MultiplyAddAdjacent(scaleL, Avx512BW.MultiplyAddAdjacent(q4l, q8l));
                    Vector512<int> p16h = Avx512BW.MultiplyAddAdjacent(scaleH, Avx512BW.MultiplyAddAdjacent(q4h, q8h));
                    sumw = Avx512F.Add(sumw, Avx512F.Add(p16l, p16h));
                }
                sumi = QuantSimd.Fold(sumw);
            }
            else for (int j = 0; j < QK / 64; ++j)
            {
                Vector256<short> scaleL = Avx2.Shuffle(scales, QuantSimd.ScaleShuffle32(2 * j)).AsInt16();
                Vector256<short> scaleH = Avx2.Shuffle(scales, QuantSimd.ScaleShuffle32(2 * j + 1)).AsInt16();
                Vector256<byte> q4bits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
                Vector256<byte> q4l = Avx2.And(q4bits, m4);
                Vector256<byte> q4h = Avx2.And(Avx2.ShiftRightLogical(q4bits.AsUInt16(), 4).AsByte(), m4);
                ref byte q8 = ref Unsafe.Add(ref yb, Q8_K.QsOffset + 64 * j);
                Vector256<int> p16l = Avx2.MultiplyAddAdjacent(scaleL, Avx2.MultiplyAddAdjacent(q4l, Vector256.LoadUnsafe(ref q8).AsSByte()));
                Vector256<int> p16h = Avx2.MultiplyAddAdjacent(scaleH, Avx2.MultiplyAddAdjacent(q4h, Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32)).AsSByte()));
                sumi = Avx2.Add(sumi, Avx2.Add(p16l, p16h));
            }
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), acc);
        }
        accM = Sse.Add(accM, Sse.MoveHighToLow(accM, accM));
        accM = Sse.AddScalar(accM, Sse3.MoveHighAndDuplicate(accM));
        return QuantSimd.HorizontalSum(acc) + accM.ToScalar();
    }
}
