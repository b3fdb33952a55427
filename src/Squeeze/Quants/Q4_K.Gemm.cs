using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q4_K
{
    /// <summary>
    /// Tiles of 2 weight rows x 4 (or 2) activation rows on the 512-bit path: each block's nibbles, scales and mins are
    /// unpacked once for two products, and each Q8_K block's quants and group sums are loaded once for two rows. Every
    /// product keeps <see cref="VecDot"/>'s lanes (the same int32 lane totals, one FMA per block into eight float lanes,
    /// the mins in four lanes, the same final sums), so results are bit-identical.
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

    private static void Tile2x2(ref byte x, int xStride, ref byte y, int yStride, int nb, ref float s, int sStride)
    {
        Vector256<float> acc00 = default, acc10 = default, acc01 = default, acc11 = default;
        Vector128<float> accM00 = default, accM10 = default, accM01 = default, accM11 = default;
        for (int i = 0; i < nb; ++i)
        {
            ref byte x0 = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte x1 = ref Unsafe.Add(ref x0, xStride);
            ref byte y0 = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            ref byte y1 = ref Unsafe.Add(ref y0, yStride);
            Vector256<short> ms0 = MinsAndScales(ref x0, ScalesOffset), ms1 = MinsAndScales(ref x1, ScalesOffset);
            Mins(ref x0, ref x1, ms0, ms1, ref y0, ref accM00, ref accM10);
            Mins(ref x0, ref x1, ms0, ms1, ref y1, ref accM01, ref accM11);
            Vector512<sbyte> sc0 = Scales512(ms0), sc1 = Scales512(ms1);
            Vector512<int> s00 = default, s10 = default, s01 = default, s11 = default;
            for (int j = 0; j < QK / 64; j += 2)
            {
                Unpack(ref x0, sc0, j, out var l0, out var h0, out var scL0, out var scH0);
                Unpack(ref x1, sc1, j, out var l1, out var h1, out var scL1, out var scH1);
                Products(ref y0, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s00, ref s10);
                Products(ref y1, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s01, ref s11);
            }
            Scale(ref x0, ref x1, ref y0, s00, s10, ref acc00, ref acc10);
            Scale(ref x0, ref x1, ref y1, s01, s11, ref acc01, ref acc11);
        }
        s = Finish(acc00, accM00);
        Unsafe.Add(ref s, 1) = Finish(acc10, accM10);
        Unsafe.Add(ref s, sStride) = Finish(acc01, accM01);
        Unsafe.Add(ref s, sStride + 1) = Finish(acc11, accM11);
    }

    // 2 weight rows x 4 activation rows: the rows' nibbles and scales unpacked once for four products each.
    private static void Tile2x4(ref byte x, int xStride, ref byte y, int yStride, int nb, ref float s, int sStride)
    {
        Vector256<float> acc00 = default, acc10 = default, acc01 = default, acc11 = default, acc02 = default, acc12 = default, acc03 = default, acc13 = default;
        Vector128<float> accM00 = default, accM10 = default, accM01 = default, accM11 = default, accM02 = default, accM12 = default, accM03 = default, accM13 = default;
        for (int i = 0; i < nb; ++i)
        {
            ref byte x0 = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte x1 = ref Unsafe.Add(ref x0, xStride);
            ref byte y0 = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            ref byte y1 = ref Unsafe.Add(ref y0, yStride);
            ref byte y2 = ref Unsafe.Add(ref y1, yStride);
            ref byte y3 = ref Unsafe.Add(ref y2, yStride);
            Vector256<short> ms0 = MinsAndScales(ref x0, ScalesOffset), ms1 = MinsAndScales(ref x1, ScalesOffset);
            Mins(ref x0, ref x1, ms0, ms1, ref y0, ref accM00, ref accM10);
            Mins(ref x0, ref x1, ms0, ms1, ref y1, ref accM01, ref accM11);
            Mins(ref x0, ref x1, ms0, ms1, ref y2, ref accM02, ref accM12);
            Mins(ref x0, ref x1, ms0, ms1, ref y3, ref accM03, ref accM13);
            Vector512<sbyte> sc0 = Scales512(ms0), sc1 = Scales512(ms1);
            Vector512<int> s00 = default, s10 = default, s01 = default, s11 = default, s02 = default, s12 = default, s03 = default, s13 = default;
            for (int j = 0; j < QK / 64; j += 2)
            {
                Unpack(ref x0, sc0, j, out var l0, out var h0, out var scL0, out var scH0);
                Unpack(ref x1, sc1, j, out var l1, out var h1, out var scL1, out var scH1);
                Products(ref y0, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s00, ref s10);
                Products(ref y1, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s01, ref s11);
                Products(ref y2, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s02, ref s12);
                Products(ref y3, j, l0, h0, scL0, scH0, l1, h1, scL1, scH1, ref s03, ref s13);
            }
            Scale(ref x0, ref x1, ref y0, s00, s10, ref acc00, ref acc10);
            Scale(ref x0, ref x1, ref y1, s01, s11, ref acc01, ref acc11);
            Scale(ref x0, ref x1, ref y2, s02, s12, ref acc02, ref acc12);
            Scale(ref x0, ref x1, ref y3, s03, s13, ref acc03, ref acc13);
        }
        s = Finish(acc00, accM00);
        Unsafe.Add(ref s, 1) = Finish(acc10, accM10);
        Unsafe.Add(ref s, sStride) = Finish(acc01, accM01);
        Unsafe.Add(ref s, sStride + 1) = Finish(acc11, accM11);
        Unsafe.Add(ref s, 2 * sStride) = Finish(acc02, accM02);
        Unsafe.Add(ref s, 2 * sStride + 1) = Finish(acc12, accM12);
        Unsafe.Add(ref s, 3 * sStride) = Finish(acc03, accM03);
        Unsafe.Add(ref s, 3 * sStride + 1) = Finish(acc13, accM13);
    }

    // The mins term of one activation block against two weight blocks: dmin = -yd * dmin_x, times the group sums.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Mins(ref byte x0, ref byte x1, Vector256<short> ms0, Vector256<short> ms1, ref byte yb, ref Vector128<float> m0, ref Vector128<float> m1)
    {
        float yd = Unsafe.ReadUnaligned<float>(ref yb);
        Vector128<short> q8s = GroupSums(ref yb);
        m0 = Fma.MultiplyAdd(Vector128.Create(-yd * Half(ref x0, DminOffset)), Sse2.ConvertToVector128Single(Sse2.MultiplyAddAdjacent(ms0.GetUpper(), q8s)), m0);
        m1 = Fma.MultiplyAdd(Vector128.Create(-yd * Half(ref x1, DminOffset)), Sse2.ConvertToVector128Single(Sse2.MultiplyAddAdjacent(ms1.GetUpper(), q8s)), m1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<sbyte> Scales512(Vector256<short> minsAndScales)
    {
        Vector256<short> sc = Vector256.Create(minsAndScales.GetLower(), minsAndScales.GetLower());
        return Vector512.Create(sc, sc).AsSByte();
    }

    // Chunks j and j + 1 (128 quants) of a weight block: low and high nibbles with their int16 scales.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unpack(ref byte xb, Vector512<sbyte> scales, int j, out Vector512<byte> lo, out Vector512<byte> hi, out Vector512<short> scaleL, out Vector512<short> scaleH)
    {
        Vector512<byte> m4 = Vector512.Create((byte)0xF);
        Vector512<byte> bits = Vector512.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
        lo = bits & m4;
        hi = Avx512BW.ShiftRightLogical(bits.AsUInt16(), 4).AsByte() & m4;
        scaleL = Avx512BW.Shuffle(scales, QuantSimd.ScaleShuffle32Pair(2 * j)).AsInt16();
        scaleH = Avx512BW.Shuffle(scales, QuantSimd.ScaleShuffle32Pair(2 * j + 1)).AsInt16();
    }

    // One activation block's 128 quants against two unpacked weight blocks, into their int32 lane totals.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Products(ref byte yb, int j, Vector512<byte> l0, Vector512<byte> h0, Vector512<short> scL0, Vector512<short> scH0,
        Vector512<byte> l1, Vector512<byte> h1, Vector512<short> scL1, Vector512<short> scH1, ref Vector512<int> s0, ref Vector512<int> s1)
    {
        ref byte q = ref Unsafe.Add(ref yb, Q8_K.QsOffset + 64 * j);
        Vector512<sbyte> ql = Vector512.Create(Vector256.LoadUnsafe(ref q), Vector256.LoadUnsafe(ref Unsafe.Add(ref q, 64))).AsSByte();
        Vector512<sbyte> qh = Vector512.Create(Vector256.LoadUnsafe(ref Unsafe.Add(ref q, 32)), Vector256.LoadUnsafe(ref Unsafe.Add(ref q, 96))).AsSByte();
        s0 = Avx512F.Add(s0, Avx512F.Add(Avx512BW.MultiplyAddAdjacent(scL0, Avx512BW.MultiplyAddAdjacent(l0, ql)), Avx512BW.MultiplyAddAdjacent(scH0, Avx512BW.MultiplyAddAdjacent(h0, qh))));
        s1 = Avx512F.Add(s1, Avx512F.Add(Avx512BW.MultiplyAddAdjacent(scL1, Avx512BW.MultiplyAddAdjacent(l1, ql)), Avx512BW.MultiplyAddAdjacent(scH1, Avx512BW.MultiplyAddAdjacent(h1, qh))));
    }

    // The block's FMA into the eight float lanes: d = yd * d_x.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Scale(ref byte x0, ref byte x1, ref byte yb, Vector512<int> s0, Vector512<int> s1, ref Vector256<float> acc0, ref Vector256<float> acc1)
    {
        float yd = Unsafe.ReadUnaligned<float>(ref yb);
        acc0 = Fma.MultiplyAdd(Vector256.Create(yd * Half(ref x0, DOffset)), Avx.ConvertToVector256Single(QuantSimd.Fold(s0)), acc0);
        acc1 = Fma.MultiplyAdd(Vector256.Create(yd * Half(ref x1, DOffset)), Avx.ConvertToVector256Single(QuantSimd.Fold(s1)), acc1);
    }

    // The block's six-bit scales (low eight int16) and mins (high eight int16), as VecDotAvx2 unpacks them.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<short> MinsAndScales(ref byte xb, int scalesOffset)
    {
        UnpackScalesMins(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref xb, scalesOffset), 12), out uint u0, out uint u1, out uint u2, out uint u3);
        return Avx2.ConvertToVector256Int16(Vector128.Create(u0, u1, u2, u3).AsByte());
    }

    // Q8_K's sixteen group sums added in pairs: the sum of each 32 quants.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<short> GroupSums(ref byte yb)
    {
        Vector256<short> q8sums = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, Q8_K.BsumsOffset)).AsInt16();
        return Ssse3.HorizontalAdd(q8sums.GetLower(), q8sums.GetUpper());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Finish(Vector256<float> acc, Vector128<float> accM)
    {
        accM = Sse.Add(accM, Sse.MoveHighToLow(accM, accM));
        accM = Sse.AddScalar(accM, Sse3.MoveHighAndDuplicate(accM));
        return QuantSimd.HorizontalSum(acc) + accM.ToScalar();
    }
}
