using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q5_K
{
    /// <summary>
    /// Tiles of 2 weight rows x 4 (or 2) activation rows on the 512-bit path: each block's five-bit quants, scales and mins
    /// are unpacked once for two products, and each Q8_K block is loaded once for two rows. Every product keeps
    /// <see cref="VecDot"/>'s lanes (the same int32 lane totals, one FMA per block into eight float lanes, the mins as
    /// a scalar fused multiply-add per block), so results are bit-identical.
    /// </summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride)
    {
        if (!QuantSimd.UseAvx512)
        {
            DecodedTiles<Avx2Block>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);
            return;
        }
        GemmTiles.Check(this, x, xStride, rows, y, yStride, cols, n, s, sStride);
        if (n % QK != 0)
        {
            GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
            return;
        }
        int nb = n / QK, rows2 = rows & ~1, cols2 = cols & ~1;
        ref byte px = ref MemoryMarshal.GetReference(x);
        ref byte py = ref MemoryMarshal.GetReference(y);
        ref float ps = ref MemoryMarshal.GetReference(s);
        int cols4 = cols & ~3, t0 = 0;
        for (; t0 < cols4; t0 += 4)
            for (int r = 0; r < rows2; r += 2)
                Tile2x4(ref Unsafe.Add(ref px, r * xStride), xStride, ref Unsafe.Add(ref py, t0 * yStride), yStride, nb,
                    ref Unsafe.Add(ref ps, t0 * sStride + r), sStride);
        for (int t = t0; t < cols2; t += 2)
            for (int r = 0; r < rows2; r += 2)
                Tile2x2(ref Unsafe.Add(ref px, r * xStride), xStride, ref Unsafe.Add(ref py, t * yStride), yStride, nb,
                    ref Unsafe.Add(ref ps, t * sStride + r), sStride);
        GemmTiles.VecDotEach(this, x, xStride, rows2, rows, y, yStride, 0, cols2, n, s, sStride);
        GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, cols2, cols, n, s, sStride);
    }

    // Q4_K's Products and Scale serve as they are: Q5_K's quants are bytes 0..31 with the same scales, d at offset 0.
    private static void Tile2x2(ref byte x, int xStride, ref byte y, int yStride, int nb, ref float s, int sStride)
    {
        Vector256<float> acc00 = default, acc10 = default, acc01 = default, acc11 = default;
        float summs00 = 0f, summs10 = 0f, summs01 = 0f, summs11 = 0f;
        for (int i = 0; i < nb; ++i)
        {
            ref byte x0 = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte x1 = ref Unsafe.Add(ref x0, xStride);
            ref byte y0 = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            ref byte y1 = ref Unsafe.Add(ref y0, yStride);
            Vector256<short> ms0 = Q4_K.MinsAndScales(ref x0, ScalesOffset), ms1 = Q4_K.MinsAndScales(ref x1, ScalesOffset);
            Mins(ref x0, ref x1, ms0, ms1, ref y0, ref summs00, ref summs10);
            Mins(ref x0, ref x1, ms0, ms1, ref y1, ref summs01, ref summs11);
            Vector512<sbyte> sc0 = Q4_K.Scales512(ms0), sc1 = Q4_K.Scales512(ms1);
            Vector512<byte> hb0 = HighBits(ref x0), hb1 = HighBits(ref x1);
            Vector512<int> s00 = default, s10 = default, s01 = default, s11 = default;
            for (int j = 0; j < QK / 64; j += 2)
            {
                Unpack(ref x0, hb0, sc0, j, out var l0, out var h0, out var scL0, out var scH0);
                Unpack(ref x1, hb1, sc1, j, out var l1, out var h1, out var scL1, out var scH1);
                Q4_K.Products(ref y0, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s00, ref s10);
                Q4_K.Products(ref y1, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s01, ref s11);
            }
            Q4_K.Scale(ref x0, ref x1, ref y0, s00, s10, ref acc00, ref acc10);
            Q4_K.Scale(ref x0, ref x1, ref y1, s01, s11, ref acc01, ref acc11);
        }
        s = QuantSimd.HorizontalSum(acc00) + summs00;
        Unsafe.Add(ref s, 1) = QuantSimd.HorizontalSum(acc10) + summs10;
        Unsafe.Add(ref s, sStride) = QuantSimd.HorizontalSum(acc01) + summs01;
        Unsafe.Add(ref s, sStride + 1) = QuantSimd.HorizontalSum(acc11) + summs11;
    }

    // 2 weight rows x 4 activation rows: the rows' quants and scales unpacked once for four products each.
    private static void Tile2x4(ref byte x, int xStride, ref byte y, int yStride, int nb, ref float s, int sStride)
    {
        Vector256<float> acc00 = default, acc10 = default, acc01 = default, acc11 = default, acc02 = default, acc12 = default, acc03 = default, acc13 = default;
        float summs00 = 0f, summs10 = 0f, summs01 = 0f, summs11 = 0f, summs02 = 0f, summs12 = 0f, summs03 = 0f, summs13 = 0f;
        for (int i = 0; i < nb; ++i)
        {
            ref byte x0 = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte x1 = ref Unsafe.Add(ref x0, xStride);
            ref byte y0 = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            ref byte y1 = ref Unsafe.Add(ref y0, yStride);
            ref byte y2 = ref Unsafe.Add(ref y1, yStride);
            ref byte y3 = ref Unsafe.Add(ref y2, yStride);
            Vector256<short> ms0 = Q4_K.MinsAndScales(ref x0, ScalesOffset), ms1 = Q4_K.MinsAndScales(ref x1, ScalesOffset);
            Mins(ref x0, ref x1, ms0, ms1, ref y0, ref summs00, ref summs10);
            Mins(ref x0, ref x1, ms0, ms1, ref y1, ref summs01, ref summs11);
            Mins(ref x0, ref x1, ms0, ms1, ref y2, ref summs02, ref summs12);
            Mins(ref x0, ref x1, ms0, ms1, ref y3, ref summs03, ref summs13);
            Vector512<sbyte> sc0 = Q4_K.Scales512(ms0), sc1 = Q4_K.Scales512(ms1);
            Vector512<byte> hb0 = HighBits(ref x0), hb1 = HighBits(ref x1);
            Vector512<int> s00 = default, s10 = default, s01 = default, s11 = default, s02 = default, s12 = default, s03 = default, s13 = default;
            for (int j = 0; j < QK / 64; j += 2)
            {
                Unpack(ref x0, hb0, sc0, j, out var l0, out var h0, out var scL0, out var scH0);
                Unpack(ref x1, hb1, sc1, j, out var l1, out var h1, out var scL1, out var scH1);
                Q4_K.Products(ref y0, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s00, ref s10);
                Q4_K.Products(ref y1, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s01, ref s11);
                Q4_K.Products(ref y2, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s02, ref s12);
                Q4_K.Products(ref y3, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s03, ref s13);
            }
            Q4_K.Scale(ref x0, ref x1, ref y0, s00, s10, ref acc00, ref acc10);
            Q4_K.Scale(ref x0, ref x1, ref y1, s01, s11, ref acc01, ref acc11);
            Q4_K.Scale(ref x0, ref x1, ref y2, s02, s12, ref acc02, ref acc12);
            Q4_K.Scale(ref x0, ref x1, ref y3, s03, s13, ref acc03, ref acc13);
        }
        s = QuantSimd.HorizontalSum(acc00) + summs00;
        Unsafe.Add(ref s, 1) = QuantSimd.HorizontalSum(acc10) + summs10;
        Unsafe.Add(ref s, sStride) = QuantSimd.HorizontalSum(acc01) + summs01;
        Unsafe.Add(ref s, sStride + 1) = QuantSimd.HorizontalSum(acc11) + summs11;
        Unsafe.Add(ref s, 2 * sStride) = QuantSimd.HorizontalSum(acc02) + summs02;
        Unsafe.Add(ref s, 2 * sStride + 1) = QuantSimd.HorizontalSum(acc12) + summs12;
        Unsafe.Add(ref s, 3 * sStride) = QuantSimd.HorizontalSum(acc03) + summs03;
        Unsafe.Add(ref s, 3 * sStride + 1) = QuantSimd.HorizontalSum(acc13) + summs13;
    }

    // The mins of one activation block against two weight blocks, as a scalar fused multiply-add (VecDotAvx2's order).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Mins(ref byte x0, ref byte x1, Vector256<short> ms0, Vector256<short> ms1, ref byte yb, ref float m0, ref float m1)
    {
        float yd = Unsafe.ReadUnaligned<float>(ref yb);
        Vector128<short> q8s = Q4_K.GroupSums(ref yb);
        m0 = MathF.FusedMultiplyAdd(-yd * Half(ref x0, DminOffset), Vector128.Sum(Sse2.MultiplyAddAdjacent(ms0.GetUpper(), q8s)), m0);
        m1 = MathF.FusedMultiplyAdd(-yd * Half(ref x1, DminOffset), Vector128.Sum(Sse2.MultiplyAddAdjacent(ms1.GetUpper(), q8s)), m1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> HighBits(ref byte xb)
    {
        Vector256<byte> h = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QhOffset));
        return Vector512.Create(h, h);
    }

    // Chunks j and j + 1 (128 quants): low and high nibbles plus 16 where the fifth bit is set, with their int16 scales.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unpack(ref byte xb, Vector512<byte> hbits, Vector512<sbyte> scales, int j,
        out Vector512<byte> lo, out Vector512<byte> hi, out Vector512<short> scaleL, out Vector512<short> scaleH)
    {
        Vector512<byte> m4 = Vector512.Create((byte)0xF), sixteen = Vector512.Create((byte)16);
        Vector512<byte> mask0 = Vector512.Create(Vector256.Create((byte)(1 << (2 * j))), Vector256.Create((byte)(1 << (2 * j + 2))));
        Vector512<byte> mask1 = Vector512.Create(Vector256.Create((byte)(2 << (2 * j))), Vector256.Create((byte)(2 << (2 * j + 2))));
        Vector512<byte> bits = Vector512.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
        lo = (bits & m4) + (Avx512BW.CompareEqual(hbits & mask0, mask0) & sixteen);
        hi = (Avx512BW.ShiftRightLogical(bits.AsUInt16(), 4).AsByte() & m4) + (Avx512BW.CompareEqual(hbits & mask1, mask1) & sixteen);
        scaleL = Avx512BW.Shuffle(scales, QuantSimd.ScaleShuffle32Pair(2 * j)).AsInt16();
        scaleH = Avx512BW.Shuffle(scales, QuantSimd.ScaleShuffle32Pair(2 * j + 1)).AsInt16();
    }
}
