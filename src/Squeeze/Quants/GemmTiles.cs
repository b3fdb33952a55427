namespace Squeeze.Quants;

/// <summary>Helpers shared by the tiled matrix-matrix kernels (<see cref="IQuantKernel.VecDotTile"/>).</summary>
internal static class GemmTiles
{
    /// <summary>
    /// One <see cref="IQuantKernel.VecDot"/> per (row, column) of the sub-tile rows [r0, r1) x columns [t0, t1):
    /// the reference for tiles and the edges a kernel's register blocks do not cover.
    /// </summary>
    public static void VecDotEach(IQuantKernel kernel, ReadOnlySpan<byte> x, int xStride, int r0, int r1,
        ReadOnlySpan<byte> y, int yStride, int t0, int t1, int n, Span<float> s, int sStride)
    {
        int xBytes = checked((int)GgmlTypes.RowSize(kernel.Type, n)), yBytes = checked((int)GgmlTypes.RowSize(kernel.VecDotType, n));
        for (int t = t0; t < t1; t++)
        {
            var yr = y.Slice(t * yStride, yBytes);
            for (int r = r0; r < r1; r++)
                s[t * sStride + r] = kernel.VecDot(x.Slice(r * xStride, xBytes), yr, n);
        }
    }

    /// <summary>Checks a tile's arguments against its buffers (kernels then read through unchecked references).</summary>
    public static void Check(IQuantKernel kernel, ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride)
    {
        long xBytes = GgmlTypes.RowSize(kernel.Type, n), yBytes = GgmlTypes.RowSize(kernel.VecDotType, n);
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(nameof(rows), "negative tile size");
        if (rows == 0 || cols == 0) return;
        if (xStride < xBytes || (long)(rows - 1) * xStride + xBytes > x.Length)
            throw new ArgumentException($"{kernel.Type.Name()} tile: x holds {x.Length} bytes, not {rows} rows of {xBytes} bytes {xStride} apart", nameof(x));
        if (yStride < yBytes || (long)(cols - 1) * yStride + yBytes > y.Length)
            throw new ArgumentException($"{kernel.Type.Name()} tile: y holds {y.Length} bytes, not {cols} rows of {yBytes} bytes {yStride} apart", nameof(y));
        if (sStride < rows || (long)(cols - 1) * sStride + rows > s.Length)
            throw new ArgumentException($"{kernel.Type.Name()} tile: s holds {s.Length} floats, not {cols} rows of {rows} {sStride} apart", nameof(s));
    }
}
