using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

/// <summary>
/// A weight block that ggml dots with a Q8_0 activation block as signed bytes: an fp16 scale at offset 0 and 32
/// quants that decode to signed bytes, multiplied with <c>mul_sum_i8_pairs</c>, scaled by <c>dx * dy</c> into eight
/// float lanes (Q8_0, Q4_0).
/// </summary>
internal interface IQ8DotBlock
{
    /// <summary>Bytes per block.</summary>
    static abstract int BlockBytes { get; }

    /// <summary>The block's 32 quants as signed bytes, as the type's AVX2 vec_dot decodes them.</summary>
    static abstract Vector256<sbyte> Quants(ref byte block);
}

/// <summary>
/// Tiles for <see cref="IQ8DotBlock"/> types: 4 weight rows x 4 activation rows (AVX2) or x 8 (AVX-512), each block
/// decoded once for all the tile's products. Each product keeps the vec_dot's arithmetic (eight float lanes, one
/// FMA per block, the same horizontal sum), so the results are bit-identical.
/// </summary>
internal static class Q8Tiles<TBlock> where TBlock : struct, IQ8DotBlock
{
    public static void Run(IQuantKernel kernel, ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride)
    {
        GemmTiles.Check(kernel, x, xStride, rows, y, yStride, cols, n, s, sStride);
        if (!QuantSimd.UseAvx2 || n % 32 != 0)
        {
            GemmTiles.VecDotEach(kernel, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
            return;
        }
        int nb = n / 32, rows4 = rows & ~3, cols4 = cols & ~3;
        bool vnni = QuantSimd.UseVnni;
        ref byte px = ref MemoryMarshal.GetReference(x);
        ref byte py = ref MemoryMarshal.GetReference(y);
        ref float ps = ref MemoryMarshal.GetReference(s);
        int t0 = 0;
        if (QuantSimd.UseAvx512)
        {
            // 512-bit vectors hold two activation rows' blocks side by side (eight lanes each).
            int cols8 = cols & ~7;
            for (; t0 < cols8; t0 += 8)
                for (int r = 0; r < rows4; r += 4)
                    Tile4x8(ref Unsafe.Add(ref px, r * xStride), xStride, ref Unsafe.Add(ref py, t0 * yStride), yStride, nb,
                        ref Unsafe.Add(ref ps, t0 * sStride + r), sStride);
        }
        for (int t = t0; t < cols4; t += 4)
            for (int r = 0; r < rows4; r += 4)
                Tile4x4(ref Unsafe.Add(ref px, r * xStride), xStride, ref Unsafe.Add(ref py, t * yStride), yStride, nb, vnni,
                    ref Unsafe.Add(ref ps, t * sStride + r), sStride);
        GemmTiles.VecDotEach(kernel, x, xStride, rows4, rows, y, yStride, 0, cols4, n, s, sStride);
        GemmTiles.VecDotEach(kernel, x, xStride, 0, rows, y, yStride, cols4, cols, n, s, sStride);
    }

    /// <summary>
    /// 4 weight rows x 8 activation rows with 512-bit vectors: lanes 0-7 of each accumulator belong to one activation
    /// row and lanes 8-15 to the next. The sign trick becomes a blend of y and -y under the mask x &lt; 0 (where x is 0
    /// the product is 0 either way), and <c>vpmaddubsw</c> cannot saturate on |x| &lt;= 128, |y| &lt;= 128, so the int32 lane
    /// totals, and with them every float step, equal the vec_dot's.
    /// </summary>
    private static void Tile4x8(ref byte x, int xStride, ref byte y, int yStride, int nb, ref float s, int sStride)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        ref byte x0 = ref x, x1 = ref Unsafe.Add(ref x, xStride), x2 = ref Unsafe.Add(ref x, 2 * xStride), x3 = ref Unsafe.Add(ref x, 3 * xStride);
        for (int ib = 0, o = 0, oy = 0; ib < nb; ib++, o += TBlock.BlockBytes, oy += Q8_0.BlockBytes)
        {
            Row(ref x0, o, out Vector512<byte> a0, out Vector512<sbyte> n0, out Vector512<float> d0);
            Row(ref x1, o, out Vector512<byte> a1, out Vector512<sbyte> n1, out Vector512<float> d1);
            Row(ref x2, o, out Vector512<byte> a2, out Vector512<sbyte> n2, out Vector512<float> d2);
            Row(ref x3, o, out Vector512<byte> a3, out Vector512<sbyte> n3, out Vector512<float> d3);
            ColumnPair(ref y, yStride, 0, oy, a0, a1, a2, a3, n0, n1, n2, n3, d0, d1, d2, d3, ref c00, ref c10, ref c20, ref c30);
            ColumnPair(ref y, yStride, 2, oy, a0, a1, a2, a3, n0, n1, n2, n3, d0, d1, d2, d3, ref c01, ref c11, ref c21, ref c31);
            ColumnPair(ref y, yStride, 4, oy, a0, a1, a2, a3, n0, n1, n2, n3, d0, d1, d2, d3, ref c02, ref c12, ref c22, ref c32);
            ColumnPair(ref y, yStride, 6, oy, a0, a1, a2, a3, n0, n1, n2, n3, d0, d1, d2, d3, ref c03, ref c13, ref c23, ref c33);
        }
        StorePair(ref s, sStride, c00, c10, c20, c30);
        StorePair(ref Unsafe.Add(ref s, 2 * sStride), sStride, c01, c11, c21, c31);
        StorePair(ref Unsafe.Add(ref s, 4 * sStride), sStride, c02, c12, c22, c32);
        StorePair(ref Unsafe.Add(ref s, 6 * sStride), sStride, c03, c13, c23, c33);
    }

    // A weight block in both halves: |q|, the mask q < 0, and d.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row(ref byte xb, int o, out Vector512<byte> abs, out Vector512<sbyte> negative, out Vector512<float> d)
    {
        Vector256<sbyte> q = TBlock.Quants(ref Unsafe.Add(ref xb, o));
        Vector512<sbyte> qq = Vector512.Create(q, q);
        abs = Vector512.Abs(qq).AsByte();
        negative = Vector512.LessThan(qq, Vector512<sbyte>.Zero);
        d = Vector512.Create(Half(ref xb, o));
    }

    // Activation rows t and t+1 against the four weight blocks.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnPair(ref byte y, int yStride, int t, int o,
        Vector512<byte> a0, Vector512<byte> a1, Vector512<byte> a2, Vector512<byte> a3,
        Vector512<sbyte> n0, Vector512<sbyte> n1, Vector512<sbyte> n2, Vector512<sbyte> n3,
        Vector512<float> d0, Vector512<float> d1, Vector512<float> d2, Vector512<float> d3,
        ref Vector512<float> c0, ref Vector512<float> c1, ref Vector512<float> c2, ref Vector512<float> c3)
    {
        ref byte ya = ref Unsafe.Add(ref y, t * yStride + o);
        ref byte yb = ref Unsafe.Add(ref ya, yStride);
        Vector512<sbyte> qy = Vector512.Create(Vector256.LoadUnsafe(ref Unsafe.Add(ref ya, 2)), Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, 2))).AsSByte();
        Vector512<sbyte> ny = Vector512<sbyte>.Zero - qy;
        Vector512<float> dy = Vector512.Create(Vector256.Create(Half(ref ya, 0)), Vector256.Create(Half(ref yb, 0)));
        c0 = Vector512.FusedMultiplyAdd(d0 * dy, Vector512.ConvertToSingle(Dot(a0, Vector512.ConditionalSelect(n0, ny, qy))), c0);
        c1 = Vector512.FusedMultiplyAdd(d1 * dy, Vector512.ConvertToSingle(Dot(a1, Vector512.ConditionalSelect(n1, ny, qy))), c1);
        c2 = Vector512.FusedMultiplyAdd(d2 * dy, Vector512.ConvertToSingle(Dot(a2, Vector512.ConditionalSelect(n2, ny, qy))), c2);
        c3 = Vector512.FusedMultiplyAdd(d3 * dy, Vector512.ConvertToSingle(Dot(a3, Vector512.ConditionalSelect(n3, ny, qy))), c3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot(Vector512<byte> a, Vector512<sbyte> b) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a, b), Vector512<short>.One);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePair(ref float s, int sStride, Vector512<float> c0, Vector512<float> c1, Vector512<float> c2, Vector512<float> c3)
    {
        Store(ref s, c0.GetLower(), c1.GetLower(), c2.GetLower(), c3.GetLower());
        Store(ref Unsafe.Add(ref s, sStride), c0.GetUpper(), c1.GetUpper(), c2.GetUpper(), c3.GetUpper());
    }

    private static void Tile4x4(ref byte x, int xStride, ref byte y, int yStride, int nb, bool vnni, ref float s, int sStride)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector256<float> c30 = default, c31 = default, c32 = default, c33 = default;
        ref byte x0 = ref x, x1 = ref Unsafe.Add(ref x, xStride), x2 = ref Unsafe.Add(ref x, 2 * xStride), x3 = ref Unsafe.Add(ref x, 3 * xStride);
        ref byte y0 = ref y, y1 = ref Unsafe.Add(ref y, yStride), y2 = ref Unsafe.Add(ref y, 2 * yStride), y3 = ref Unsafe.Add(ref y, 3 * yStride);
        for (int ib = 0, o = 0, oy = 0; ib < nb; ib++, o += TBlock.BlockBytes, oy += Q8_0.BlockBytes)
        {
            float dx0 = Half(ref x0, o), dx1 = Half(ref x1, o), dx2 = Half(ref x2, o), dx3 = Half(ref x3, o);
            Vector256<sbyte> q0 = TBlock.Quants(ref Unsafe.Add(ref x0, o));
            Vector256<sbyte> q1 = TBlock.Quants(ref Unsafe.Add(ref x1, o));
            Vector256<sbyte> q2 = TBlock.Quants(ref Unsafe.Add(ref x2, o));
            Vector256<sbyte> q3 = TBlock.Quants(ref Unsafe.Add(ref x3, o));
            Vector256<byte> a0 = Avx2.Sign(q0, q0).AsByte(), a1 = Avx2.Sign(q1, q1).AsByte(), a2 = Avx2.Sign(q2, q2).AsByte(), a3 = Avx2.Sign(q3, q3).AsByte();

            Column(ref y0, oy, vnni, dx0, dx1, dx2, dx3, q0, q1, q2, q3, a0, a1, a2, a3, ref c00, ref c10, ref c20, ref c30);
            Column(ref y1, oy, vnni, dx0, dx1, dx2, dx3, q0, q1, q2, q3, a0, a1, a2, a3, ref c01, ref c11, ref c21, ref c31);
            Column(ref y2, oy, vnni, dx0, dx1, dx2, dx3, q0, q1, q2, q3, a0, a1, a2, a3, ref c02, ref c12, ref c22, ref c32);
            Column(ref y3, oy, vnni, dx0, dx1, dx2, dx3, q0, q1, q2, q3, a0, a1, a2, a3, ref c03, ref c13, ref c23, ref c33);
        }
        Store(ref s, c00, c10, c20, c30);
        Store(ref Unsafe.Add(ref s, sStride), c01, c11, c21, c31);
        Store(ref Unsafe.Add(ref s, 2 * sStride), c02, c12, c22, c32);
        Store(ref Unsafe.Add(ref s, 3 * sStride), c03, c13, c23, c33);
    }

    // One activation block against the four weight blocks: MulSumI8's sign trick with |x| computed once per row.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Column(ref byte y, int o, bool vnni, float dx0, float dx1, float dx2, float dx3,
        Vector256<sbyte> q0, Vector256<sbyte> q1, Vector256<sbyte> q2, Vector256<sbyte> q3,
        Vector256<byte> a0, Vector256<byte> a1, Vector256<byte> a2, Vector256<byte> a3,
        ref Vector256<float> c0, ref Vector256<float> c1, ref Vector256<float> c2, ref Vector256<float> c3)
    {
        float dy = Half(ref y, o);
        Vector256<sbyte> qy = Vector256.LoadUnsafe(ref Unsafe.Add(ref y, o + 2)).AsSByte();
        c0 = Fma.MultiplyAdd(Vector256.Create(dx0 * dy), Avx.ConvertToVector256Single(QuantSimd.MulSumUs8(a0, Avx2.Sign(qy, q0), vnni)), c0);
        c1 = Fma.MultiplyAdd(Vector256.Create(dx1 * dy), Avx.ConvertToVector256Single(QuantSimd.MulSumUs8(a1, Avx2.Sign(qy, q1), vnni)), c1);
        c2 = Fma.MultiplyAdd(Vector256.Create(dx2 * dy), Avx.ConvertToVector256Single(QuantSimd.MulSumUs8(a2, Avx2.Sign(qy, q2), vnni)), c2);
        c3 = Fma.MultiplyAdd(Vector256.Create(dx3 * dy), Avx.ConvertToVector256Single(QuantSimd.MulSumUs8(a3, Avx2.Sign(qy, q3), vnni)), c3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ref float s, Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3)
    {
        s = QuantSimd.HorizontalSum(c0);
        Unsafe.Add(ref s, 1) = QuantSimd.HorizontalSum(c1);
        Unsafe.Add(ref s, 2) = QuantSimd.HorizontalSum(c2);
        Unsafe.Add(ref s, 3) = QuantSimd.HorizontalSum(c3);
    }
}
