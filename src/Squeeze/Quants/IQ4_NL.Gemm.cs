using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

internal sealed partial class IQ4_NL
{
    /// <summary>
    /// Tiles of 1 weight row x 4 activation rows: each pair of blocks is expanded to levels once for four products.
    /// Every product keeps <see cref="VecDotAvx2"/>'s arithmetic (even and odd blocks in two eight-lane
    /// accumulators, one FMA per block, the same final sum), so results are bit-identical. Rows with an odd block
    /// count (the vec_dot's scalar tail) take one <see cref="VecDot"/> per product.
    /// </summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride)
    {
        GemmTiles.Check(this, x, xStride, rows, y, yStride, cols, n, s, sStride);
        int nb = n / QK4_NL;
        if (!QuantSimd.UseAvx2 || n % QK4_NL != 0 || nb % 2 != 0 || cols < 4)
        {
            GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
            return;
        }
        int cols4 = cols & ~3;
        ref byte px = ref MemoryMarshal.GetReference(x);
        ref byte py = ref MemoryMarshal.GetReference(y);
        ref float ps = ref MemoryMarshal.GetReference(s);
        for (int t = 0; t < cols4; t += 4)
            for (int r = 0; r < rows; r++)
                Tile1x4(ref Unsafe.Add(ref px, r * xStride), ref Unsafe.Add(ref py, t * yStride), yStride, nb, ref Unsafe.Add(ref ps, t * sStride + r), sStride);
        GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, cols4, cols, n, s, sStride);
    }

    private static void Tile1x4(ref byte x, ref byte y, int yStride, int nb, ref float s, int sStride)
    {
        Vector128<sbyte> values = Vector128.LoadUnsafe(ref MemoryMarshal.GetReference(Iq4Values.KValues));
        Vector256<float> e0 = default, e1 = default, e2 = default, e3 = default; // even blocks
        Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default; // odd blocks
        ref byte y0 = ref y, y1 = ref Unsafe.Add(ref y, yStride), y2 = ref Unsafe.Add(ref y, 2 * yStride), y3 = ref Unsafe.Add(ref y, 3 * yStride);
        for (int ib = 0; ib < nb; ib += 2)
        {
            ref byte xa = ref Unsafe.Add(ref x, ib * BlockBytes);
            ref byte xb = ref Unsafe.Add(ref xa, BlockBytes);
            Vector256<sbyte> qa = Expand(Vector128.LoadUnsafe(ref Unsafe.Add(ref xa, 2)), values);
            Vector256<sbyte> qb = Expand(Vector128.LoadUnsafe(ref Unsafe.Add(ref xb, 2)), values);
            Vector256<byte> aa = Avx2.Abs(qa), ab = Avx2.Abs(qb);
            float da = Half(ref xa, 0), db = Half(ref xb, 0);
            int oy = ib * IqDot.Q80Bytes;
            Column(ref Unsafe.Add(ref y0, oy), qa, qb, aa, ab, da, db, ref e0, ref o0);
            Column(ref Unsafe.Add(ref y1, oy), qa, qb, aa, ab, da, db, ref e1, ref o1);
            Column(ref Unsafe.Add(ref y2, oy), qa, qb, aa, ab, da, db, ref e2, ref o2);
            Column(ref Unsafe.Add(ref y3, oy), qa, qb, aa, ab, da, db, ref e3, ref o3);
        }
        s = IqDot.HorizontalSum8(e0 + o0);
        Unsafe.Add(ref s, sStride) = IqDot.HorizontalSum8(e1 + o1);
        Unsafe.Add(ref s, 2 * sStride) = IqDot.HorizontalSum8(e2 + o2);
        Unsafe.Add(ref s, 3 * sStride) = IqDot.HorizontalSum8(e3 + o3);
    }

    // Two activation blocks against the two expanded weight blocks: DotQuads with |x| computed once.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Column(ref byte yb, Vector256<sbyte> qa, Vector256<sbyte> qb, Vector256<byte> aa, Vector256<byte> ab, float da, float db,
        ref Vector256<float> even, ref Vector256<float> odd)
    {
        ref byte yb2 = ref Unsafe.Add(ref yb, IqDot.Q80Bytes);
        Vector256<int> pa = Quads(aa, Avx2.Sign(Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, 2)).AsSByte(), qa));
        Vector256<int> pb = Quads(ab, Avx2.Sign(Vector256.LoadUnsafe(ref Unsafe.Add(ref yb2, 2)).AsSByte(), qb));
        even = Fma.MultiplyAdd(Vector256.Create(Half(ref yb, 0) * da), Avx.ConvertToVector256Single(pa), even);
        odd = Fma.MultiplyAdd(Vector256.Create(Half(ref yb2, 0) * db), Avx.ConvertToVector256Single(pb), odd);
    }

    // DotQuads' second half: the same sums with or without AVX-VNNI.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Quads(Vector256<byte> ax, Vector256<sbyte> sy)
    {
        if (AvxVnni.IsSupported) return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ax, sy);
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ax, sy), Vector256.Create((short)1));
    }
}
