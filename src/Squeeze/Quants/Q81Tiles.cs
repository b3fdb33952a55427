using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

/// <summary>
/// A weight block that ggml dots with a Q8_1 activation block: fp16 <c>d</c> at offset 0, fp16 min <c>m</c> at 2 and
/// 32 quants that decode to unsigned bytes, multiplied with <c>mul_sum_us8_pairs</c> and scaled by <c>dx * dy</c> into
/// eight float lanes; the min enters as <c>m * s_y</c>, summed in block order (Q4_1, Q5_1).
/// </summary>
internal interface IQ81DotBlock
{
    /// <summary>Bytes per block.</summary>
    static abstract int BlockBytes { get; }

    /// <summary>The block's 32 quants as unsigned bytes, as the type's AVX2 vec_dot decodes them.</summary>
    static abstract Vector256<byte> Quants(ref byte block);
}

/// <summary>
/// Tiles of 4 weight rows x 4 activation rows for <see cref="IQ81DotBlock"/> types, each block decoded once for four
/// products. The lanes keep the vec_dot's arithmetic (one FMA per block into eight float lanes, the same horizontal
/// sum) and the min terms are the same scalar FMA chain per product (four rows side by side in one 128-bit FMA, lane
/// by lane the same operation), so results are bit-identical.
/// </summary>
internal static class Q81Tiles<TBlock> where TBlock : struct, IQ81DotBlock
{
    public static void Run(IQuantKernel kernel, ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride)
    {
        GemmTiles.Check(kernel, x, xStride, rows, y, yStride, cols, n, s, sStride);
        if (!QuantSimd.UseAvx2 || n % 32 != 0 || cols < 2)
        {
            GemmTiles.VecDotEach(kernel, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
            return;
        }
        int nb = n / 32, rows4 = rows & ~3, cols4 = cols & ~3;
        bool vnni = QuantSimd.UseVnni;
        ref byte px = ref MemoryMarshal.GetReference(x);
        ref byte py = ref MemoryMarshal.GetReference(y);
        ref float ps = ref MemoryMarshal.GetReference(s);
        for (int t = 0; t < cols4; t += 4)
            for (int r = 0; r < rows4; r += 4)
                Tile4x4(ref Unsafe.Add(ref px, r * xStride), xStride, ref Unsafe.Add(ref py, t * yStride), yStride, nb, vnni,
                    ref Unsafe.Add(ref ps, t * sStride + r), sStride);
        GemmTiles.VecDotEach(kernel, x, xStride, rows4, rows, y, yStride, 0, cols4, n, s, sStride);
        GemmTiles.VecDotEach(kernel, x, xStride, 0, rows, y, yStride, cols4, cols, n, s, sStride);
    }

    private static void Tile4x4(ref byte x, int xStride, ref byte y, int yStride, int nb, bool vnni, ref float s, int sStride)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector256<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector128<float> m0 = default, m1 = default, m2 = default, m3 = default;
        ref byte x0 = ref x, x1 = ref Unsafe.Add(ref x, xStride), x2 = ref Unsafe.Add(ref x, 2 * xStride), x3 = ref Unsafe.Add(ref x, 3 * xStride);
        ref byte y0 = ref y, y1 = ref Unsafe.Add(ref y, yStride), y2 = ref Unsafe.Add(ref y, 2 * yStride), y3 = ref Unsafe.Add(ref y, 3 * yStride);
        for (int ib = 0, o = 0, oy = 0; ib < nb; ib++, o += TBlock.BlockBytes, oy += Q8_1.BlockBytes)
        {
            float dx0 = Half(ref x0, o), dx1 = Half(ref x1, o), dx2 = Half(ref x2, o), dx3 = Half(ref x3, o);
            Vector128<float> mx = Vector128.Create(Half(ref x0, o + 2), Half(ref x1, o + 2), Half(ref x2, o + 2), Half(ref x3, o + 2));
            Vector256<byte> q0 = TBlock.Quants(ref Unsafe.Add(ref x0, o));
            Vector256<byte> q1 = TBlock.Quants(ref Unsafe.Add(ref x1, o));
            Vector256<byte> q2 = TBlock.Quants(ref Unsafe.Add(ref x2, o));
            Vector256<byte> q3 = TBlock.Quants(ref Unsafe.Add(ref x3, o));
            Column(ref y0, oy, vnni, dx0, dx1, dx2, dx3, mx, q0, q1, q2, q3, ref c00, ref c10, ref c20, ref c30, ref m0);
            Column(ref y1, oy, vnni, dx0, dx1, dx2, dx3, mx, q0, q1, q2, q3, ref c01, ref c11, ref c21, ref c31, ref m1);
            Column(ref y2, oy, vnni, dx0, dx1, dx2, dx3, mx, q0, q1, q2, q3, ref c02, ref c12, ref c22, ref c32, ref m2);
            Column(ref y3, oy, vnni, dx0, dx1, dx2, dx3, mx, q0, q1, q2, q3, ref c03, ref c13, ref c23, ref c33, ref m3);
        }
        Store(ref s, c00, c10, c20, c30, m0);
        Store(ref Unsafe.Add(ref s, sStride), c01, c11, c21, c31, m1);
        Store(ref Unsafe.Add(ref s, 2 * sStride), c02, c12, c22, c32, m2);
        Store(ref Unsafe.Add(ref s, 3 * sStride), c03, c13, c23, c33, m3);
    }

    // One activation block against the four weight blocks; the min terms of the four rows in one FMA.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Column(ref byte y, int o, bool vnni, float dx0, float dx1, float dx2, float dx3, Vector128<float> mx,
        Vector256<byte> q0, Vector256<byte> q1, Vector256<byte> q2, Vector256<byte> q3,
        ref Vector256<float> c0, ref Vector256<float> c1, ref Vector256<float> c2, ref Vector256<float> c3, ref Vector128<float> m)
    {
        float dy = Half(ref y, o);
        m = Fma.MultiplyAdd(mx, Vector128.Create(Half(ref y, o + 2)), m);
        Vector256<sbyte> qy = Vector256.LoadUnsafe(ref Unsafe.Add(ref y, o + 4)).AsSByte();
        c0 = Fma.MultiplyAdd(Vector256.Create(dx0 * dy), Avx.ConvertToVector256Single(QuantSimd.MulSumUs8(q0, qy, vnni)), c0);
        c1 = Fma.MultiplyAdd(Vector256.Create(dx1 * dy), Avx.ConvertToVector256Single(QuantSimd.MulSumUs8(q1, qy, vnni)), c1);
        c2 = Fma.MultiplyAdd(Vector256.Create(dx2 * dy), Avx.ConvertToVector256Single(QuantSimd.MulSumUs8(q2, qy, vnni)), c2);
        c3 = Fma.MultiplyAdd(Vector256.Create(dx3 * dy), Avx.ConvertToVector256Single(QuantSimd.MulSumUs8(q3, qy, vnni)), c3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ref float s, Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3, Vector128<float> m)
    {
        s = QuantSimd.HorizontalSum(c0) + m.GetElement(0);
        Unsafe.Add(ref s, 1) = QuantSimd.HorizontalSum(c1) + m.GetElement(1);
        Unsafe.Add(ref s, 2) = QuantSimd.HorizontalSum(c2) + m.GetElement(2);
        Unsafe.Add(ref s, 3) = QuantSimd.HorizontalSum(c3) + m.GetElement(3);
    }
}
