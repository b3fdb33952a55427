using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q5_K
{
    /// <summary>
    /// Tiles of 2 weight rows x 2 activation rows on the 512-bit path: each block's five-bit quants, scales and mins
    /// are unpacked once for two products, and each Q8_K block is loaded once for two rows. Every product keeps
    /// <see cref="VecDot"/>'s lanes (the same int32 lane totals, one FMA per block into eight float lanes, the mins as
    /// a scalar fused multiply-add per block), so results are bit-identical.
    /// </summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride)
    {
        GemmTiles.Check(this, x, xStride, rows, y, yStride, cols, n, s, sStride);
        if (!QuantSimd.UseAvx512 || n % QK != 0)
        {
            GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
            return;
        }
        int nb = n / QK, rows2 = rows & ~1, cols2 = cols & ~1;
        ref byte px = ref MemoryMarshal.GetReference(x);
        ref byte py = ref MemoryMarshal.GetReference(y);
        ref float ps = ref MemoryMarshal.GetReference(s);
        for (int t = 0; t < cols2; t += 2)
            for (int r = 0; r < rows2; r += 2)
                Tile2x2(ref Unsafe.Add(ref px, r * xStride), xStride, ref Unsafe.Add(ref py, t * yStride), yStride, nb,
                    ref Unsafe.Add(ref ps, t * sStride + r), sStride);
        GemmTiles.VecDotEach(this, x, xStride, rows2, rows, y, yStride, 0, cols2, n, s, sStride);
        GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, cols2, cols, n, s, sStride);
    }

    private static void Tile2x2(ref byte x, int xStride, ref byte y, int yStride, int nb, ref float s, int sStride)
    {
        Vector256<float> acc00 = default, acc10 = default, acc01 = default, acc11 = default;
        float summs00 = 0f, summs10 = 0f, summs01 = 0f, summs11 = 0f;
        Vector512<byte> sixteen = Vector512.Create((byte)16);
        Vector512<byte> m4 = Vector512.Create((byte)0xF);
        for (int i = 0; i < nb; ++i)
        {
            ref byte x0 = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte x1 = ref Unsafe.Add(ref x0, xStride);
            ref byte y0 = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            ref byte y1 = ref Unsafe.Add(ref y0, yStride);
            float yd0 = Unsafe.ReadUnaligned<float>(ref y0), yd1 = Unsafe.ReadUnaligned<float>(ref y1);
            float d0 = Half(ref x0, DOffset), m0 = Half(ref x0, DminOffset), d1 = Half(ref x1, DOffset), m1 = Half(ref x1, DminOffset);

            Vector256<short> ms0 = Q4_K.MinsAndScales(ref x0, ScalesOffset), ms1 = Q4_K.MinsAndScales(ref x1, ScalesOffset);
            Vector128<short> q8s0 = Q4_K.GroupSums(ref y0), q8s1 = Q4_K.GroupSums(ref y1);
            summs00 = MathF.FusedMultiplyAdd(-yd0 * m0, Vector128.Sum(Sse2.MultiplyAddAdjacent(ms0.GetUpper(), q8s0)), summs00);
            summs10 = MathF.FusedMultiplyAdd(-yd0 * m1, Vector128.Sum(Sse2.MultiplyAddAdjacent(ms1.GetUpper(), q8s0)), summs10);
            summs01 = MathF.FusedMultiplyAdd(-yd1 * m0, Vector128.Sum(Sse2.MultiplyAddAdjacent(ms0.GetUpper(), q8s1)), summs01);
            summs11 = MathF.FusedMultiplyAdd(-yd1 * m1, Vector128.Sum(Sse2.MultiplyAddAdjacent(ms1.GetUpper(), q8s1)), summs11);
            Vector256<byte> hb0 = Vector256.LoadUnsafe(ref Unsafe.Add(ref x0, QhOffset)), hb1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref x1, QhOffset));
            Vector512<byte> hbits0 = Vector512.Create(hb0, hb0), hbits1 = Vector512.Create(hb1, hb1);

            Vector256<short> sc0h = Vector256.Create(ms0.GetLower(), ms0.GetLower());
            Vector512<sbyte> sc0 = Vector512.Create(sc0h, sc0h).AsSByte();
            Vector256<short> sc1h = Vector256.Create(ms1.GetLower(), ms1.GetLower());
            Vector512<sbyte> sc1 = Vector512.Create(sc1h, sc1h).AsSByte();
            Vector512<int> s00 = default, s10 = default, s01 = default, s11 = default;
            for (int j = 0; j < QK / 64; j += 2)
            {
                Vector512<sbyte> shL = QuantSimd.ScaleShuffle32Pair(2 * j), shH = QuantSimd.ScaleShuffle32Pair(2 * j + 1);
                Vector512<short> scL0 = Avx512BW.Shuffle(sc0, shL).AsInt16(), scH0 = Avx512BW.Shuffle(sc0, shH).AsInt16();
                Vector512<short> scL1 = Avx512BW.Shuffle(sc1, shL).AsInt16(), scH1 = Avx512BW.Shuffle(sc1, shH).AsInt16();
                Vector512<byte> mask0 = Vector512.Create(Vector256.Create((byte)(1 << (2 * j))), Vector256.Create((byte)(1 << (2 * j + 2))));
                Vector512<byte> mask1 = Vector512.Create(Vector256.Create((byte)(2 << (2 * j))), Vector256.Create((byte)(2 << (2 * j + 2))));
                Vector512<byte> bits0 = Vector512.LoadUnsafe(ref Unsafe.Add(ref x0, QsOffset + 32 * j));
                Vector512<byte> bits1 = Vector512.LoadUnsafe(ref Unsafe.Add(ref x1, QsOffset + 32 * j));
                Vector512<byte> l0 = (bits0 & m4) + (Avx512BW.CompareEqual(hbits0 & mask0, mask0) & sixteen);
                Vector512<byte> h0 = (Avx512BW.ShiftRightLogical(bits0.AsUInt16(), 4).AsByte() & m4) + (Avx512BW.CompareEqual(hbits0 & mask1, mask1) & sixteen);
                Vector512<byte> l1 = (bits1 & m4) + (Avx512BW.CompareEqual(hbits1 & mask0, mask0) & sixteen);
                Vector512<byte> h1 = (Avx512BW.ShiftRightLogical(bits1.AsUInt16(), 4).AsByte() & m4) + (Avx512BW.CompareEqual(hbits1 & mask1, mask1) & sixteen);
                ref byte q0 = ref Unsafe.Add(ref y0, Q8_K.QsOffset + 64 * j);
                ref byte q1 = ref Unsafe.Add(ref y1, Q8_K.QsOffset + 64 * j);
                Vector512<sbyte> ql0 = Vector512.Create(Vector256.LoadUnsafe(ref q0), Vector256.LoadUnsafe(ref Unsafe.Add(ref q0, 64))).AsSByte();
                Vector512<sbyte> qh0 = Vector512.Create(Vector256.LoadUnsafe(ref Unsafe.Add(ref q0, 32)), Vector256.LoadUnsafe(ref Unsafe.Add(ref q0, 96))).AsSByte();
                Vector512<sbyte> ql1 = Vector512.Create(Vector256.LoadUnsafe(ref q1), Vector256.LoadUnsafe(ref Unsafe.Add(ref q1, 64))).AsSByte();
                Vector512<sbyte> qh1 = Vector512.Create(Vector256.LoadUnsafe(ref Unsafe.Add(ref q1, 32)), Vector256.LoadUnsafe(ref Unsafe.Add(ref q1, 96))).AsSByte();
                s00 = Avx512F.Add(s00, Avx512F.Add(Avx512BW.MultiplyAddAdjacent(scL0, Avx512BW.MultiplyAddAdjacent(l0, ql0)), Avx512BW.MultiplyAddAdjacent(scH0, Avx512BW.MultiplyAddAdjacent(h0, qh0))));
                s10 = Avx512F.Add(s10, Avx512F.Add(Avx512BW.MultiplyAddAdjacent(scL1, Avx512BW.MultiplyAddAdjacent(l1, ql0)), Avx512BW.MultiplyAddAdjacent(scH1, Avx512BW.MultiplyAddAdjacent(h1, qh0))));
                s01 = Avx512F.Add(s01, Avx512F.Add(Avx512BW.MultiplyAddAdjacent(scL0, Avx512BW.MultiplyAddAdjacent(l0, ql1)), Avx512BW.MultiplyAddAdjacent(scH0, Avx512BW.MultiplyAddAdjacent(h0, qh1))));
                s11 = Avx512F.Add(s11, Avx512F.Add(Avx512BW.MultiplyAddAdjacent(scL1, Avx512BW.MultiplyAddAdjacent(l1, ql1)), Avx512BW.MultiplyAddAdjacent(scH1, Avx512BW.MultiplyAddAdjacent(h1, qh1))));
            }
            acc00 = Fma.MultiplyAdd(Vector256.Create(yd0 * d0), Avx.ConvertToVector256Single(QuantSimd.Fold(s00)), acc00);
            acc10 = Fma.MultiplyAdd(Vector256.Create(yd0 * d1), Avx.ConvertToVector256Single(QuantSimd.Fold(s10)), acc10);
            acc01 = Fma.MultiplyAdd(Vector256.Create(yd1 * d0), Avx.ConvertToVector256Single(QuantSimd.Fold(s01)), acc01);
            acc11 = Fma.MultiplyAdd(Vector256.Create(yd1 * d1), Avx.ConvertToVector256Single(QuantSimd.Fold(s11)), acc11);
        }
        s = QuantSimd.HorizontalSum(acc00) + summs00;
        Unsafe.Add(ref s, 1) = QuantSimd.HorizontalSum(acc10) + summs10;
        Unsafe.Add(ref s, sStride) = QuantSimd.HorizontalSum(acc01) + summs01;
        Unsafe.Add(ref s, sStride + 1) = QuantSimd.HorizontalSum(acc11) + summs11;
    }
}
