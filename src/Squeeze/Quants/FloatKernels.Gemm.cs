using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// Tiled dot products of the float types (see FloatTiles; FloatTilesAvx2 at the AVX2 level): rows whose length is a
// whole number of steps; anything else is one VecDot per product, which the tiles equal bit for bit. F16 with one
// activation row (generation) widens that row once and each weight row as it streams past.

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
        if (cols == 1 && rows > 0 && Simd.Level >= SimdLevel.Avx2 && n % Step == 0 && n > 0)
            DotColumn(x, xStride, rows, y, n, s);
        else if (Simd.Level == SimdLevel.Avx2 && n % Step == 0 && n != 0)
            FloatTiles.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride, n, &WidenRow, &FloatTilesAvx2.Tile2x2Step64, &DotWidened256);
        else if (Simd.Level < SimdLevel.Avx512 || n % Step != 0 || n == 0)
            GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
        else
            FloatTiles.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride, n, &WidenRow, &FloatTiles.Tile2x2Step64, &DotWidened);
    }

    /// <summary>
    /// One activation row against <paramref name="rows"/> weight rows (generating a token): the activation is widened
    /// once, each weight row as it is read; VecDot's accumulators and order, bit for bit.
    /// </summary>
    private static unsafe void DotColumn(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int n, Span<float> s)
    {
        var buffer = FloatTiles.ColumnBuffer(n);
        fixed (byte* px = x)
        fixed (byte* py = y)
        fixed (float* yf = buffer)
        fixed (float* ps = s)
        {
            WidenRow(py, yf, n);
            if (Simd.Level >= SimdLevel.Avx512)
                for (int r = 0; r < rows; r++) ps[r] = DotWidened(px + (long)r * xStride, yf, n);
            else
                for (int r = 0; r < rows; r++) ps[r] = DotWidened256(px + (long)r * xStride, yf, n);
        }
    }

    private static unsafe void WidenRow(byte* src, float* dst, int n)
    {
        ref ushort h = ref *(ushort*)src;
        if (Simd.Level >= SimdLevel.Avx512)
        {
            Vector512<int> guard = default;
            for (int i = 0; i < n; i += 16) Fp16.Load16(ref h, (nuint)i, ref guard).Store(dst + i);
            if (Fp16.HasSpecial(guard))
                for (int i = 0; i < n; i += 16) Fp16.Load16Exact(ref h, (nuint)i).Store(dst + i);
        }
        else
        {
            Vector256<int> guard = default;
            for (int i = 0; i < n; i += 8) Fp16.Load8(ref h, (nuint)i, ref guard).Store(dst + i);
            if (Fp16.HasSpecial(guard))
                for (int i = 0; i < n; i += 8) Fp16.Load8Exact(ref h, (nuint)i).Store(dst + i);
        }
    }

    // Body512 with the activation already widened: the same accumulators, half the conversions.
    private static unsafe float DotWidened(byte* x, float* y, int np)
    {
        ref ushort h = ref *(ushort*)x;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<int> guard = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector512.FusedMultiplyAdd(Fp16.Load16(ref h, o, ref guard), Vector512.Load(y + i), a0);
            a1 = Vector512.FusedMultiplyAdd(Fp16.Load16(ref h, o + 16, ref guard), Vector512.Load(y + i + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(Fp16.Load16(ref h, o + 32, ref guard), Vector512.Load(y + i + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(Fp16.Load16(ref h, o + 48, ref guard), Vector512.Load(y + i + 48), a3);
        }
        if (Fp16.HasSpecial(guard)) return DotWidenedExact(x, y, np);
        return Lanes.Reduce16((a0 + a2) + (a1 + a3));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe float DotWidenedExact(byte* x, float* y, int np)
    {
        ref ushort h = ref *(ushort*)x;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector512.FusedMultiplyAdd(Fp16.Load16Exact(ref h, o), Vector512.Load(y + i), a0);
            a1 = Vector512.FusedMultiplyAdd(Fp16.Load16Exact(ref h, o + 16), Vector512.Load(y + i + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(Fp16.Load16Exact(ref h, o + 32), Vector512.Load(y + i + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(Fp16.Load16Exact(ref h, o + 48), Vector512.Load(y + i + 48), a3);
        }
        return Lanes.Reduce16((a0 + a2) + (a1 + a3));
    }

    // Body256 with the activation already widened.
    private static unsafe float DotWidened256(byte* x, float* y, int np)
    {
        ref ushort h = ref *(ushort*)x;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector256<int> guard = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref h, o, ref guard), Vector256.Load(y + i), a0);
            a1 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref h, o + 8, ref guard), Vector256.Load(y + i + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref h, o + 16, ref guard), Vector256.Load(y + i + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref h, o + 24, ref guard), Vector256.Load(y + i + 24), a3);
            a4 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref h, o + 32, ref guard), Vector256.Load(y + i + 32), a4);
            a5 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref h, o + 40, ref guard), Vector256.Load(y + i + 40), a5);
            a6 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref h, o + 48, ref guard), Vector256.Load(y + i + 48), a6);
            a7 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref h, o + 56, ref guard), Vector256.Load(y + i + 56), a7);
        }
        if (Fp16.HasSpecial(guard)) return DotWidened256Exact(x, y, np);
        return Lanes.Reduce16((a0 + a4) + (a2 + a6), (a1 + a5) + (a3 + a7));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe float DotWidened256Exact(byte* x, float* y, int np)
    {
        ref ushort h = ref *(ushort*)x;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref h, o), Vector256.Load(y + i), a0);
            a1 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref h, o + 8), Vector256.Load(y + i + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref h, o + 16), Vector256.Load(y + i + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref h, o + 24), Vector256.Load(y + i + 24), a3);
            a4 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref h, o + 32), Vector256.Load(y + i + 32), a4);
            a5 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref h, o + 40), Vector256.Load(y + i + 40), a5);
            a6 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref h, o + 48), Vector256.Load(y + i + 48), a6);
            a7 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref h, o + 56), Vector256.Load(y + i + 56), a7);
        }
        return Lanes.Reduce16((a0 + a4) + (a2 + a6), (a1 + a5) + (a3 + a7));
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
