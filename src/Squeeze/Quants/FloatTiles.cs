using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Squeeze.Quants;

/// <summary>
/// Register-blocked tiles for the float dot products (F32, F16, BF16) at the AVX-512 level: 2 weight rows x 2
/// activation rows, both already widened to float. Each product keeps its <c>VecDot</c>'s accumulators (16-lane
/// fused multiply-adds over the same steps) and reduction, so a tile equals four <c>VecDot</c> calls bit for bit;
/// the widening (F16, BF16) happens once per row instead of once per product.
/// </summary>
internal static unsafe class FloatTiles
{
    [ThreadStatic] private static float[]? _rows, _cols;

    /// <summary>Per-thread scratch for <paramref name="n"/> widened weight rows.</summary>
    public static float[] RowBuffer(int n) => _rows is { } b && b.Length >= n ? b : _rows = new float[n];

    /// <summary>Per-thread scratch for <paramref name="n"/> widened activation rows.</summary>
    public static float[] ColumnBuffer(int n) => _cols is { } b && b.Length >= n ? b : _cols = new float[n];

    /// <summary>
    /// F32/F16's body: four 16-lane accumulators over steps of 64, reduced as (0 + 2) + (1 + 3) then across lanes.
    /// Writes s[0] = x0.y0, s[1] = x1.y0, s[sStride] = x0.y1, s[sStride + 1] = x1.y1 over <paramref name="np"/> elements.
    /// </summary>
    public static void Tile2x2Step64(float* x0, float* x1, float* y0, float* y1, int np, float* s, int sStride)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default; // x0.y0
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default; // x1.y0
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default; // x0.y1
        Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default; // x1.y1
        for (int i = 0; i < np; i += 64)
        {
            Vector512<float> u0 = Vector512.Load(x0 + i), u1 = Vector512.Load(x1 + i), v0 = Vector512.Load(y0 + i), v1 = Vector512.Load(y1 + i);
            a0 = Vector512.FusedMultiplyAdd(u0, v0, a0); b0 = Vector512.FusedMultiplyAdd(u1, v0, b0);
            c0 = Vector512.FusedMultiplyAdd(u0, v1, c0); d0 = Vector512.FusedMultiplyAdd(u1, v1, d0);
            u0 = Vector512.Load(x0 + i + 16); u1 = Vector512.Load(x1 + i + 16); v0 = Vector512.Load(y0 + i + 16); v1 = Vector512.Load(y1 + i + 16);
            a1 = Vector512.FusedMultiplyAdd(u0, v0, a1); b1 = Vector512.FusedMultiplyAdd(u1, v0, b1);
            c1 = Vector512.FusedMultiplyAdd(u0, v1, c1); d1 = Vector512.FusedMultiplyAdd(u1, v1, d1);
            u0 = Vector512.Load(x0 + i + 32); u1 = Vector512.Load(x1 + i + 32); v0 = Vector512.Load(y0 + i + 32); v1 = Vector512.Load(y1 + i + 32);
            a2 = Vector512.FusedMultiplyAdd(u0, v0, a2); b2 = Vector512.FusedMultiplyAdd(u1, v0, b2);
            c2 = Vector512.FusedMultiplyAdd(u0, v1, c2); d2 = Vector512.FusedMultiplyAdd(u1, v1, d2);
            u0 = Vector512.Load(x0 + i + 48); u1 = Vector512.Load(x1 + i + 48); v0 = Vector512.Load(y0 + i + 48); v1 = Vector512.Load(y1 + i + 48);
            a3 = Vector512.FusedMultiplyAdd(u0, v0, a3); b3 = Vector512.FusedMultiplyAdd(u1, v0, b3);
            c3 = Vector512.FusedMultiplyAdd(u0, v1, c3); d3 = Vector512.FusedMultiplyAdd(u1, v1, d3);
        }
        s[0] = Lanes.Reduce16((a0 + a2) + (a1 + a3));
        s[1] = Lanes.Reduce16((b0 + b2) + (b1 + b3));
        s[sStride] = Lanes.Reduce16((c0 + c2) + (c1 + c3));
        s[sStride + 1] = Lanes.Reduce16((d0 + d2) + (d1 + d3));
    }

    /// <summary>
    /// BF16's body: two 16-lane accumulators over steps of 32, each reduced across lanes, then summed in double.
    /// Same output layout as <see cref="Tile2x2Step64"/>.
    /// </summary>
    public static void Tile2x2Step32(float* x0, float* x1, float* y0, float* y1, int np, float* s, int sStride)
    {
        Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
        for (int i = 0; i < np; i += 32)
        {
            Vector512<float> u0 = Vector512.Load(x0 + i), u1 = Vector512.Load(x1 + i), v0 = Vector512.Load(y0 + i), v1 = Vector512.Load(y1 + i);
            a0 = Vector512.FusedMultiplyAdd(u0, v0, a0); b0 = Vector512.FusedMultiplyAdd(u1, v0, b0);
            c0 = Vector512.FusedMultiplyAdd(u0, v1, c0); d0 = Vector512.FusedMultiplyAdd(u1, v1, d0);
            u0 = Vector512.Load(x0 + i + 16); u1 = Vector512.Load(x1 + i + 16); v0 = Vector512.Load(y0 + i + 16); v1 = Vector512.Load(y1 + i + 16);
            a1 = Vector512.FusedMultiplyAdd(u0, v0, a1); b1 = Vector512.FusedMultiplyAdd(u1, v0, b1);
            c1 = Vector512.FusedMultiplyAdd(u0, v1, c1); d1 = Vector512.FusedMultiplyAdd(u1, v1, d1);
        }
        s[0] = Pair(a0, a1);
        s[1] = Pair(b0, b1);
        s[sStride] = Pair(c0, c1);
        s[sStride + 1] = Pair(d0, d1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Pair(Vector512<float> c1, Vector512<float> c2)
    {
        double sum = Lanes.Reduce16(c1);
        sum += Lanes.Reduce16(c2);
        return (float)sum;
    }

    /// <summary>
    /// The tile driver: widens the activation rows once (<paramref name="widen"/>), then each pair of weight rows,
    /// and runs <paramref name="tile"/> over every 2 x 2 block. An odd weight row goes to VecDot; an odd activation row
    /// is widened once and dotted with each weight row by <paramref name="dotWidened"/> (when given). With a null
    /// widener the rows are read in place (F32).
    /// </summary>
    public static void Run(IQuantKernel kernel, ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n,
        Span<float> s, int sStride, int np, delegate*<byte*, float*, int, void> widen, delegate*<float*, float*, float*, float*, int, float*, int, void> tile,
        delegate*<byte*, float*, int, float> dotWidened = null)
    {
        int rows2 = rows & ~1, cols2 = cols & ~1;
        fixed (byte* px = x)
        fixed (byte* py = y)
        fixed (float* ps = s)
        {
            float* yf = null, xf = null;
            int ys = 0;
            float[]? colBuf = null, rowBuf = null;
            if (widen != null)
            {
                colBuf = ColumnBuffer(cols2 * n);
                rowBuf = RowBuffer(2 * n);
            }
            fixed (float* cb = colBuf)
            fixed (float* rb = rowBuf)
            {
                if (widen != null)
                {
                    for (int t = 0; t < cols2; t++) widen(py + (long)t * yStride, cb + (long)t * n, n);
                    yf = cb;
                    ys = n;
                    xf = rb;
                }
                for (int r = 0; cols2 > 0 && r < rows2; r += 2) // no pair of activation rows: nothing to widen the weight rows for
                {
                    float* x0, x1;
                    if (widen != null)
                    {
                        widen(px + (long)r * xStride, xf, n);
                        widen(px + (long)(r + 1) * xStride, xf + n, n);
                        x0 = xf; x1 = xf + n;
                    }
                    else
                    {
                        x0 = (float*)(px + (long)r * xStride); x1 = (float*)(px + (long)(r + 1) * xStride);
                    }
                    for (int t = 0; t < cols2; t += 2)
                    {
                        float* y0 = widen != null ? yf + (long)t * ys : (float*)(py + (long)t * yStride);
                        float* y1 = widen != null ? yf + (long)(t + 1) * ys : (float*)(py + (long)(t + 1) * yStride);
                        tile(x0, x1, y0, y1, np, ps + (long)t * sStride + r, sStride);
                    }
                }
            }
        }
        GemmTiles.VecDotEach(kernel, x, xStride, rows2, rows, y, yStride, 0, cols2, n, s, sStride);
        if (cols2 == cols) return;
        if (widen == null || dotWidened == null)
        {
            GemmTiles.VecDotEach(kernel, x, xStride, 0, rows, y, yStride, cols2, cols, n, s, sStride);
            return;
        }
        // The odd column (a single token when generating): widened once, then each weight row widened as it is read.
        var last = ColumnBuffer(n);
        fixed (byte* px = x)
        fixed (byte* py = y)
        fixed (float* yl = last)
        {
            widen(py + (long)cols2 * yStride, yl, n);
            for (int r = 0; r < rows; r++) s[cols2 * sStride + r] = dotWidened(px + (long)r * xStride, yl, np);
        }
    }
}
