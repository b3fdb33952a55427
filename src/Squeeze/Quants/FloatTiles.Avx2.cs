using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Squeeze.Quants;

/// <summary>
/// The float tiles at the AVX2 level (the <see cref="FloatTiles.Run"/> driver with 256-bit bodies): each product keeps
/// its <c>Body256</c>'s accumulators (every 16-lane accumulator of the AVX-512 body as two 256-bit halves, the same
/// fused multiply-adds and reduction), so results equal <c>VecDot</c> bit for bit. Two weight rows share each
/// activation load; F16 and BF16 rows are widened once per tile instead of once per product.
/// </summary>
internal static unsafe class FloatTilesAvx2
{
    /// <summary>F32/F16: for each of the two activation rows, both weight rows over steps of 64.</summary>
    public static void Tile2x2Step64(float* x0, float* x1, float* y0, float* y1, int np, float* s, int sStride)
    {
        Pair64(x0, x1, y0, np, s);
        Pair64(x0, x1, y1, np, s + sStride);
    }

    // Two products sharing y: eight 256-bit accumulators each (Body256's), reduced as it reduces them.
    private static void Pair64(float* x0, float* x1, float* y, int np, float* s)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        for (int i = 0; i < np; i += 64)
        {
            Vector256<float> v = Vector256.Load(y + i);
            a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x0 + i), v, a0); b0 = Vector256.FusedMultiplyAdd(Vector256.Load(x1 + i), v, b0);
            v = Vector256.Load(y + i + 8);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x0 + i + 8), v, a1); b1 = Vector256.FusedMultiplyAdd(Vector256.Load(x1 + i + 8), v, b1);
            v = Vector256.Load(y + i + 16);
            a2 = Vector256.FusedMultiplyAdd(Vector256.Load(x0 + i + 16), v, a2); b2 = Vector256.FusedMultiplyAdd(Vector256.Load(x1 + i + 16), v, b2);
            v = Vector256.Load(y + i + 24);
            a3 = Vector256.FusedMultiplyAdd(Vector256.Load(x0 + i + 24), v, a3); b3 = Vector256.FusedMultiplyAdd(Vector256.Load(x1 + i + 24), v, b3);
            v = Vector256.Load(y + i + 32);
            a4 = Vector256.FusedMultiplyAdd(Vector256.Load(x0 + i + 32), v, a4); b4 = Vector256.FusedMultiplyAdd(Vector256.Load(x1 + i + 32), v, b4);
            v = Vector256.Load(y + i + 40);
            a5 = Vector256.FusedMultiplyAdd(Vector256.Load(x0 + i + 40), v, a5); b5 = Vector256.FusedMultiplyAdd(Vector256.Load(x1 + i + 40), v, b5);
            v = Vector256.Load(y + i + 48);
            a6 = Vector256.FusedMultiplyAdd(Vector256.Load(x0 + i + 48), v, a6); b6 = Vector256.FusedMultiplyAdd(Vector256.Load(x1 + i + 48), v, b6);
            v = Vector256.Load(y + i + 56);
            a7 = Vector256.FusedMultiplyAdd(Vector256.Load(x0 + i + 56), v, a7); b7 = Vector256.FusedMultiplyAdd(Vector256.Load(x1 + i + 56), v, b7);
        }
        s[0] = Lanes.Reduce16((a0 + a4) + (a2 + a6), (a1 + a5) + (a3 + a7));
        s[1] = Lanes.Reduce16((b0 + b4) + (b2 + b6), (b1 + b5) + (b3 + b7));
    }

    /// <summary>BF16: 2 x 2 products, each two 16-lane accumulators (as 256-bit halves) over steps of 32, summed in double.</summary>
    public static void Tile2x2Step32(float* x0, float* x1, float* y0, float* y1, int np, float* s, int sStride)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        for (int i = 0; i < np; i += 32)
        {
            Step(x0 + i, x1 + i, y0 + i, y1 + i, ref a0, ref b0, ref c0, ref d0);
            Step(x0 + i + 8, x1 + i + 8, y0 + i + 8, y1 + i + 8, ref a1, ref b1, ref c1, ref d1);
            Step(x0 + i + 16, x1 + i + 16, y0 + i + 16, y1 + i + 16, ref a2, ref b2, ref c2, ref d2);
            Step(x0 + i + 24, x1 + i + 24, y0 + i + 24, y1 + i + 24, ref a3, ref b3, ref c3, ref d3);
        }
        s[0] = Pair(a0, a1, a2, a3);
        s[1] = Pair(b0, b1, b2, b3);
        s[sStride] = Pair(c0, c1, c2, c3);
        s[sStride + 1] = Pair(d0, d1, d2, d3);
    }

    // Eight lanes of the four products: x0.y0, x1.y0, x0.y1, x1.y1.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(float* x0, float* x1, float* y0, float* y1,
        ref Vector256<float> a, ref Vector256<float> b, ref Vector256<float> c, ref Vector256<float> d)
    {
        Vector256<float> u0 = Vector256.Load(x0), u1 = Vector256.Load(x1), v0 = Vector256.Load(y0), v1 = Vector256.Load(y1);
        a = Vector256.FusedMultiplyAdd(u0, v0, a);
        b = Vector256.FusedMultiplyAdd(u1, v0, b);
        c = Vector256.FusedMultiplyAdd(u0, v1, c);
        d = Vector256.FusedMultiplyAdd(u1, v1, d);
    }

    // BF16's reduction: each 16-lane accumulator (lo, hi halves) reduced, then the two summed in double.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Pair(Vector256<float> c1Lo, Vector256<float> c1Hi, Vector256<float> c2Lo, Vector256<float> c2Hi)
    {
        double sum = Lanes.Reduce16(c1Lo, c1Hi);
        sum += Lanes.Reduce16(c2Lo, c2Hi);
        return (float)sum;
    }
}

// F16Kernel's AVX2 widening and single-row dot product live beside its other tiles (FloatKernels.Gemm.cs).

public sealed partial class BF16Kernel
{
    private static unsafe void WidenRow256(byte* src, float* dst, int n)
    {
        ref ushort h = ref Unsafe.AsRef<ushort>(src);
        for (int i = 0; i < n; i += 8) Load8(ref h, (nuint)i).Store(dst + i);
    }

    // Body256 with the activation already widened.
    private static unsafe float DotWidened256(byte* x, float* y, int np)
    {
        ref ushort px = ref Unsafe.AsRef<ushort>(x);
        Vector256<float> c1Lo = default, c1Hi = default, c2Lo = default, c2Hi = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            c1Lo = Vector256.FusedMultiplyAdd(Load8(ref px, o), Vector256.Load(y + i), c1Lo);
            c1Hi = Vector256.FusedMultiplyAdd(Load8(ref px, o + 8), Vector256.Load(y + i + 8), c1Hi);
            c2Lo = Vector256.FusedMultiplyAdd(Load8(ref px, o + 16), Vector256.Load(y + i + 16), c2Lo);
            c2Hi = Vector256.FusedMultiplyAdd(Load8(ref px, o + 24), Vector256.Load(y + i + 24), c2Hi);
        }
        double sum = Lanes.Reduce16(c1Lo, c1Hi);
        sum += Lanes.Reduce16(c2Lo, c2Hi);
        return (float)sum;
    }
}
