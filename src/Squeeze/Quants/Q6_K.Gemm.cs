using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q6_K
{
    /// <summary>
    /// Tiles of 2 weight rows x 4 (or 2) activation rows on the 512-bit path: each block's six-bit quants and scales are
    /// unpacked once for two products and each Q8_K block is loaded once for two rows. Every product keeps
    /// <see cref="VecDot"/>'s int32 lane totals, its -32 correction and its float accumulation, so results are bit-identical.
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
        for (int i = 0; i < nb; ++i)
        {
            ref byte x0 = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte x1 = ref Unsafe.Add(ref x0, xStride);
            ref byte y0 = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            ref byte y1 = ref Unsafe.Add(ref y0, yStride);
            Vector128<sbyte> scales0 = Vector128.LoadUnsafe(ref Unsafe.Add(ref x0, ScalesOffset)).AsSByte();
            Vector128<sbyte> scales1 = Vector128.LoadUnsafe(ref Unsafe.Add(ref x1, ScalesOffset)).AsSByte();
            Vector512<int> s00 = default, s10 = default, s01 = default, s11 = default;
            for (int j = 0; j < QK / 128; ++j)
            {
                Unpack(ref x0, scales0, j, out var a01, out var a23, out var as01, out var as23);
                Unpack(ref x1, scales1, j, out var b01, out var b23, out var bs01, out var bs23);
                Products(ref y0, j, a01, a23, as01, as23, b01, b23, bs01, bs23, ref s00, ref s10);
                Products(ref y1, j, a01, a23, as01, as23, b01, b23, bs01, bs23, ref s01, ref s11);
            }
            Scale(ref x0, ref x1, scales0, scales1, ref y0, s00, s10, ref acc00, ref acc10);
            Scale(ref x0, ref x1, scales0, scales1, ref y1, s01, s11, ref acc01, ref acc11);
        }
        s = QuantSimd.HorizontalSum(acc00);
        Unsafe.Add(ref s, 1) = QuantSimd.HorizontalSum(acc10);
        Unsafe.Add(ref s, sStride) = QuantSimd.HorizontalSum(acc01);
        Unsafe.Add(ref s, sStride + 1) = QuantSimd.HorizontalSum(acc11);
    }

    // 2 weight rows x 4 activation rows: the rows' quants and scales unpacked once for four products each.
    private static void Tile2x4(ref byte x, int xStride, ref byte y, int yStride, int nb, ref float s, int sStride)
    {
        Vector256<float> acc00 = default, acc10 = default, acc01 = default, acc11 = default, acc02 = default, acc12 = default, acc03 = default, acc13 = default;
        for (int i = 0; i < nb; ++i)
        {
            ref byte x0 = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte x1 = ref Unsafe.Add(ref x0, xStride);
            ref byte y0 = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            ref byte y1 = ref Unsafe.Add(ref y0, yStride);
            ref byte y2 = ref Unsafe.Add(ref y1, yStride);
            ref byte y3 = ref Unsafe.Add(ref y2, yStride);
            Vector128<sbyte> scales0 = Vector128.LoadUnsafe(ref Unsafe.Add(ref x0, ScalesOffset)).AsSByte();
            Vector128<sbyte> scales1 = Vector128.LoadUnsafe(ref Unsafe.Add(ref x1, ScalesOffset)).AsSByte();
            Vector512<int> s00 = default, s10 = default, s01 = default, s11 = default, s02 = default, s12 = default, s03 = default, s13 = default;
            for (int j = 0; j < QK / 128; ++j)
            {
                Unpack(ref x0, scales0, j, out var a01, out var a23, out var as01, out var as23);
                Unpack(ref x1, scales1, j, out var b01, out var b23, out var bs01, out var bs23);
                Products(ref y0, j, a01, a23, as01, as23, b01, b23, bs01, bs23, ref s00, ref s10);
                Products(ref y1, j, a01, a23, as01, as23, b01, b23, bs01, bs23, ref s01, ref s11);
                Products(ref y2, j, a01, a23, as01, as23, b01, b23, bs01, bs23, ref s02, ref s12);
                Products(ref y3, j, a01, a23, as01, as23, b01, b23, bs01, bs23, ref s03, ref s13);
            }
            Scale(ref x0, ref x1, scales0, scales1, ref y0, s00, s10, ref acc00, ref acc10);
            Scale(ref x0, ref x1, scales0, scales1, ref y1, s01, s11, ref acc01, ref acc11);
            Scale(ref x0, ref x1, scales0, scales1, ref y2, s02, s12, ref acc02, ref acc12);
            Scale(ref x0, ref x1, scales0, scales1, ref y3, s03, s13, ref acc03, ref acc13);
        }
        s = QuantSimd.HorizontalSum(acc00);
        Unsafe.Add(ref s, 1) = QuantSimd.HorizontalSum(acc10);
        Unsafe.Add(ref s, sStride) = QuantSimd.HorizontalSum(acc01);
        Unsafe.Add(ref s, sStride + 1) = QuantSimd.HorizontalSum(acc11);
        Unsafe.Add(ref s, 2 * sStride) = QuantSimd.HorizontalSum(acc02);
        Unsafe.Add(ref s, 2 * sStride + 1) = QuantSimd.HorizontalSum(acc12);
        Unsafe.Add(ref s, 3 * sStride) = QuantSimd.HorizontalSum(acc03);
        Unsafe.Add(ref s, 3 * sStride + 1) = QuantSimd.HorizontalSum(acc13);
    }

    // One activation block's 128 quants (half j) against two unpacked weight blocks, into their int32 lane totals.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Products(ref byte yb, int j, Vector512<byte> a01, Vector512<byte> a23, Vector512<short> as01, Vector512<short> as23,
        Vector512<byte> b01, Vector512<byte> b23, Vector512<short> bs01, Vector512<short> bs23, ref Vector512<int> s0, ref Vector512<int> s1)
    {
        ref byte q = ref Unsafe.Add(ref yb, Q8_K.QsOffset + 128 * j);
        Vector512<sbyte> u01 = Vector512.LoadUnsafe(ref q).AsSByte(), u23 = Vector512.LoadUnsafe(ref Unsafe.Add(ref q, 64)).AsSByte();
        s0 = Avx512F.Add(Avx512F.Add(s0, Avx512BW.MultiplyAddAdjacent(as01, Avx512BW.MultiplyAddAdjacent(a01, u01))), Avx512BW.MultiplyAddAdjacent(as23, Avx512BW.MultiplyAddAdjacent(a23, u23)));
        s1 = Avx512F.Add(Avx512F.Add(s1, Avx512BW.MultiplyAddAdjacent(bs01, Avx512BW.MultiplyAddAdjacent(b01, u01))), Avx512BW.MultiplyAddAdjacent(bs23, Avx512BW.MultiplyAddAdjacent(b23, u23)));
    }

    // The block's FMA into the eight float lanes: d = yd * d_x, the lane totals less the -32 offset.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scale(ref byte x0, ref byte x1, Vector128<sbyte> scales0, Vector128<sbyte> scales1, ref byte yb,
        Vector512<int> s0, Vector512<int> s1, ref Vector256<float> acc0, ref Vector256<float> acc1)
    {
        float yd = Unsafe.ReadUnaligned<float>(ref yb);
        Vector256<short> bsums = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, Q8_K.BsumsOffset)).AsInt16();
        acc0 = Fma.MultiplyAdd(Vector256.Create(yd * Half(ref x0, DOffset)), Total(s0, bsums, Avx2.ConvertToVector256Int16(scales0)), acc0);
        acc1 = Fma.MultiplyAdd(Vector256.Create(yd * Half(ref x1, DOffset)), Total(s1, bsums, Avx2.ConvertToVector256Int16(scales1)), acc1);
    }

    // Half j (128 quants) of a block as VecDotAvx2's wide path builds it: chunks (0, 1) and (2, 3) with their int16 scales.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unpack(ref byte xb, Vector128<sbyte> scales, int j, out Vector512<byte> q01, out Vector512<byte> q23, out Vector512<short> scale01, out Vector512<short> scale23)
    {
        int is_ = 4 * j;
        Vector512<byte> q4bits = Vector512.LoadUnsafe(ref Unsafe.Add(ref xb, QlOffset + 64 * j));
        Vector256<byte> h = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QhOffset + 32 * j));
        Vector512<ushort> hh = Vector512.Create(h, h).AsUInt16();
        Vector512<byte> q4h01 = Avx512BW.ShiftLeftLogicalVariable(hh & HighMask01, HighShift01).AsByte();
        Vector512<byte> q4h23 = Avx512BW.ShiftRightLogicalVariable(hh & HighMask23, HighShift23).AsByte();
        q01 = (q4bits & Vector512.Create((byte)15)) | q4h01;
        q23 = (Avx512BW.ShiftRightLogical(q4bits.AsUInt16(), 4).AsByte() & Vector512.Create((byte)15)) | q4h23;
        scale01 = Avx512BW.ConvertToVector512Int16(Vector256.Create(
            Ssse3.Shuffle(scales, QuantSimd.ScaleShuffleBytes(is_ + 0)), Ssse3.Shuffle(scales, QuantSimd.ScaleShuffleBytes(is_ + 1))));
        scale23 = Avx512BW.ConvertToVector512Int16(Vector256.Create(
            Ssse3.Shuffle(scales, QuantSimd.ScaleShuffleBytes(is_ + 2)), Ssse3.Shuffle(scales, QuantSimd.ScaleShuffleBytes(is_ + 3))));
    }

    // The block's int32 lane totals less the -32 offset (32 x sum of scale x group sum), as floats.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Total(Vector512<int> sum, Vector256<short> q8sums, Vector256<short> scales16) =>
        Avx.ConvertToVector256Single(Avx2.Subtract(QuantSimd.Fold(sum), Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(q8sums, scales16), 5)));
}
