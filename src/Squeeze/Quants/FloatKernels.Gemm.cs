using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// Tiled dot products of the float types (see FloatTiles; FloatTilesAvx2 at the AVX2 level): rows whose length is a
// whole number of steps; anything else is one VecDot per product, which the tiles equal bit for bit.

public sealed partial class F32Kernel
{
    /// <inheritdoc cref="IQuantKernel.VecDotTile"/>
    public unsafe void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride)
    {
        GemmTiles.Check(this, x, xStride, rows, y, yStride, cols, n, s, sStride);
        if (Simd.Level == SimdLevel.Avx2 && n % Step == 0 && n != 0 && xStride % 4 == 0 && yStride % 4 == 0)
            FloatTiles.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride, n, null, &FloatTilesAvx2.Tile2x2Step64);
        else if (Simd.Level < SimdLevel.Avx512 || n % Step != 0 || n == 0 || xStride % 4 != 0 || yStride % 4 != 0)
            GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
        else
            FloatTiles.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride, n, null, &FloatTiles.Tile2x2Step64);
    }
}

public sealed partial class F16Kernel
{
    /// <inheritdoc cref="IQuantKernel.VecDotTile"/>
    public unsafe void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride)
    {
        GemmTiles.Check(this, x, xStride, rows, y, yStride, cols, n, s, sStride);
        if (Simd.Level == SimdLevel.Avx2 && n % Step == 0 && n != 0)
            FloatTiles.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride, n, &WidenRow256, &FloatTilesAvx2.Tile2x2Step64, &DotWidened256);
        else if (Simd.Level < SimdLevel.Avx512 || n % Step != 0 || n == 0)
            GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
        else
            FloatTiles.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride, n, &WidenRow, &FloatTiles.Tile2x2Step64, &DotWidened);
    }

    private static unsafe void WidenRow(byte* src, float* dst, int n)
    {
        ushort* h = (ushort*)src;
        for (int i = 0; i < n; i += 16)
            Widen(Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i))).Store(dst + i);
    }

    // Body512 with the activation already widened: the same accumulators, half the conversions.
    private static unsafe float DotWidened(byte* x, float* y, int np)
    {
        ushort* h = (ushort*)x;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int i = 0; i < np; i += Step)
        {
            a0 = Vector512.FusedMultiplyAdd(Widen(Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i))), Vector512.Load(y + i), a0);
            a1 = Vector512.FusedMultiplyAdd(Widen(Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i + 16))), Vector512.Load(y + i + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(Widen(Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i + 32))), Vector512.Load(y + i + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(Widen(Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i + 48))), Vector512.Load(y + i + 48), a3);
        }
        return Lanes.Reduce16((a0 + a2) + (a1 + a3));
    }
}

public sealed partial class BF16Kernel
{
    /// <inheritdoc cref="IQuantKernel.VecDotTile"/>
    public unsafe void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride)
    {
        GemmTiles.Check(this, x, xStride, rows, y, yStride, cols, n, s, sStride);
        if (Simd.Level == SimdLevel.Avx2 && n % Step == 0 && n != 0)
            FloatTiles.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride, n, &WidenRow256, &FloatTilesAvx2.Tile2x2Step32, &DotWidened256);
        else if (Simd.Level < SimdLevel.Avx512 || n % Step != 0 || n == 0)
            GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
        else
            FloatTiles.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride, n, &WidenRow, &FloatTiles.Tile2x2Step32, &DotWidened);
    }

    // Body512 with the activation already widened.
    private static unsafe float DotWidened(byte* x, float* y, int np)
    {
        ushort* h = (ushort*)x;
        Vector512<float> c1 = default, c2 = default;
        for (int i = 0; i < np; i += Step)
        {
            c1 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i)) << 16).AsSingle(), Vector512.Load(y + i), c1);
            c2 = Vector512.FusedMultiplyAdd((Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i + 16)) << 16).AsSingle(), Vector512.Load(y + i + 16), c2);
        }
        double sum = Lanes.Reduce16(c1);
        sum += Lanes.Reduce16(c2);
        return (float)sum;
    }

    private static unsafe void WidenRow(byte* src, float* dst, int n)
    {
        ushort* h = (ushort*)src;
        for (int i = 0; i < n; i += 16)
            (Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i)) << 16).AsSingle().Store(dst + i);
    }
}
