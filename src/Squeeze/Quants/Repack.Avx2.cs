using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

internal static unsafe partial class Repack
{
    /// <summary>
    /// Q4_K on 256-bit vectors: <see cref="Q4KAvx512"/>'s arithmetic with 4 weight rows per vector (one 64-bit lane each),
    /// each group of 8 rows done as two halves.
    /// </summary>
    private static void Q4KAvx2(byte* w, int rowSize, int rows, byte* act, int actRowSize, int t0, int t1, int gemmRows,
        int n, float* y, int yStride)
    {
        int nb = n / Q8_K.QK;
        var acc = stackalloc Vector128<float>[2 * TokenTile];
        var accMin = stackalloc Vector128<float>[2 * TokenTile];
        var isum = stackalloc Vector128<int>[2 * TokenTile];
        var imin = stackalloc Vector128<int>[2 * TokenTile];
        var m4 = Vector256.Create((byte)0x0F);
        for (int r0 = 0; r0 < rows; r0 += Interleave)
        {
            byte* x0 = w + (long)r0 * rowSize;
            for (int tc = t0; tc < t1; tc += TokenTile)
            {
                int tn = Math.Min(TokenTile, t1 - tc), gemmEnd = Math.Clamp(gemmRows - tc, 0, tn);
                for (int k = 0; k < 2 * TokenTile; k++) acc[k] = accMin[k] = default;
                for (int b = 0; b < nb; b++)
                {
                    byte* xb = x0 + b * Q4KBlockBytes;
                    byte* yb0 = act + (long)tc * actRowSize + b * Q8_K.BlockBytes;
                    if (tc == t0) PrefetchNext(x0, rowSize, b, Q4KBlockBytes);
                    Header8(xb, rowSize, out var d8, out var dmin8, out var sc0123, out var sc4567, out var mn0123, out var mn4567);
                    for (int k = 0; k < 2 * TokenTile; k++) isum[k] = imin[k] = default;
                    for (int half = 0; half < 2; half++)
                    {
                        byte* xh = xb + 4L * half * rowSize;
                        Vector128<float> d4 = half == 0 ? d8.GetLower() : d8.GetUpper(), dmin4 = half == 0 ? dmin8.GetLower() : dmin8.GetUpper();
                        int o = half * TokenTile;
                        for (int sb = 0; sb < 4; sb++)
                        {
                            Vector256<byte> sc8 = sb < 2 ? sc0123 : sc4567, mn8 = sb < 2 ? mn0123 : mn4567;
                            Vector128<byte> sc = half == 0 ? sc8.GetLower() : sc8.GetUpper(), mn = half == 0 ? mn8.GetLower() : mn8.GetUpper();
                            Vector256<short> scLo = Repeat4Rows(sc, 2 * (sb & 1)), scHi = Repeat4Rows(sc, 2 * (sb & 1) + 1);
                            Vector128<short> mins = Ssse3.Shuffle(mn, (sb & 1) == 0 ? MinPair0.GetLower() : MinPair1.GetLower()).AsInt16();
                            Transpose4(xh + Q4KQsOffset + 32 * sb, rowSize, out var w0, out var w1, out var w2, out var w3);
                            Vector256<byte> l0 = w0 & m4, l1 = w1 & m4, l2 = w2 & m4, l3 = w3 & m4;
                            Vector256<byte> h0 = Avx2.ShiftRightLogical(w0.AsUInt16(), 4).AsByte() & m4;
                            Vector256<byte> h1 = Avx2.ShiftRightLogical(w1.AsUInt16(), 4).AsByte() & m4;
                            Vector256<byte> h2 = Avx2.ShiftRightLogical(w2.AsUInt16(), 4).AsByte() & m4;
                            Vector256<byte> h3 = Avx2.ShiftRightLogical(w3.AsUInt16(), 4).AsByte() & m4;
                            byte* yb = yb0;
                            for (int k = 0; k < tn; k++, yb += actRowSize)
                            {
                                byte* q = yb + Q8_K.QsOffset + 64 * sb;
                                Vector256<short> lo = Avx2.MultiplyAddAdjacent(l0, Broadcast256(q)) + Avx2.MultiplyAddAdjacent(l1, Broadcast256(q + 8))
                                    + Avx2.MultiplyAddAdjacent(l2, Broadcast256(q + 16)) + Avx2.MultiplyAddAdjacent(l3, Broadcast256(q + 24));
                                Vector256<short> hi = Avx2.MultiplyAddAdjacent(h0, Broadcast256(q + 32)) + Avx2.MultiplyAddAdjacent(h1, Broadcast256(q + 40))
                                    + Avx2.MultiplyAddAdjacent(h2, Broadcast256(q + 48)) + Avx2.MultiplyAddAdjacent(h3, Broadcast256(q + 56));
                                Vector128<int> s = RowSums(Avx2.MultiplyAddAdjacent(lo, scLo) + Avx2.MultiplyAddAdjacent(hi, scHi));
                                short* bsums = (short*)(yb + Q8_K.BsumsOffset) + 4 * sb;
                                int pair = (ushort)(bsums[0] + bsums[1]) | (bsums[2] + bsums[3]) << 16;
                                Vector128<int> m = Sse2.MultiplyAddAdjacent(mins, Vector128.Create(pair).AsInt16());
                                if (k < gemmEnd)
                                {
                                    float dy = *(float*)yb;
                                    acc[o + k] = Fma.MultiplyAdd(Sse2.ConvertToVector128Single(s), d4 * Vector128.Create(dy), acc[o + k]);
                                    accMin[o + k] = Fma.MultiplyAdd(Sse2.ConvertToVector128Single(m), dmin4 * Vector128.Create(dy), accMin[o + k]);
                                }
                                else
                                {
                                    isum[o + k] += s;
                                    imin[o + k] += m;
                                }
                            }
                        }
                        byte* ybv = yb0 + (long)gemmEnd * actRowSize;
                        for (int k = gemmEnd; k < tn; k++, ybv += actRowSize)
                        {
                            float dy = *(float*)ybv;
                            acc[o + k] = Fma.MultiplyAdd(Sse2.ConvertToVector128Single(isum[o + k]), d4 * Vector128.Create(dy), acc[o + k]);
                            accMin[o + k] = Fma.MultiplyAdd(Sse2.ConvertToVector128Single(imin[o + k]), dmin4 * Vector128.Create(dy), accMin[o + k]);
                        }
                    }
                }
                for (int k = 0; k < tn; k++)
                {
                    float* yr = y + (long)(tc + k) * yStride + r0;
                    (acc[k] - accMin[k]).Store(yr);
                    (acc[TokenTile + k] - accMin[TokenTile + k]).Store(yr + 4);
                }
            }
        }
    }

    /// <summary>Q4_0, IQ4_NL and MXFP4 on 256-bit vectors: <see cref="B32Avx512"/>'s arithmetic, 4 weight rows per vector.</summary>
    private static void B32Avx2(GgmlType type, sbyte[] values, byte* w, int rowSize, int rows, byte* act, int actRowSize, int t0, int t1,
        int n, float* y, int yStride)
    {
        int nb = n / 32, blockBytes = B32BlockBytes(type), qsOffset = blockBytes - 16;
        var acc = stackalloc Vector128<float>[2 * TokenTile];
        var m4 = Vector256.Create((byte)0x0F);
        var lut = Vector256.Create(Vector128.Create(values.AsSpan()));
        var ones = Vector256.Create((short)1);
        for (int r0 = 0; r0 < rows; r0 += Interleave)
        {
            byte* x0 = w + (long)r0 * rowSize;
            for (int tc = t0; tc < t1; tc += TokenTile)
            {
                int tn = Math.Min(TokenTile, t1 - tc);
                for (int k = 0; k < 2 * TokenTile; k++) acc[k] = default;
                for (int b = 0; b < nb; b++)
                {
                    byte* xb = x0 + b * blockBytes;
                    if (tc == t0) PrefetchNext(x0, rowSize, b, blockBytes);
                    Vector256<float> d8 = B32Scales(type, xb, rowSize);
                    for (int half = 0; half < 2; half++)
                    {
                        byte* q0 = xb + 4L * half * rowSize + qsOffset;
                        Vector128<float> d4 = half == 0 ? d8.GetLower() : d8.GetUpper();
                        var r01 = Vector256.Create(Vector128.Load(q0), Vector128.Load(q0 + rowSize)).AsUInt64();
                        var r23 = Vector256.Create(Vector128.Load(q0 + 2 * rowSize), Vector128.Load(q0 + 3 * rowSize)).AsUInt64();
                        // Rows 0, 2 | 1, 3 after the unpack; the permute puts them in order.
                        Vector256<byte> wLo = Avx2.Permute4x64(Avx2.UnpackLow(r01, r23), 0b11_01_10_00).AsByte();
                        Vector256<byte> wHi = Avx2.Permute4x64(Avx2.UnpackHigh(r01, r23), 0b11_01_10_00).AsByte();
                        Vector256<sbyte> v0 = Avx2.Shuffle(lut, (wLo & m4).AsSByte());
                        Vector256<sbyte> v1 = Avx2.Shuffle(lut, (Avx2.ShiftRightLogical(wLo.AsUInt16(), 4).AsByte() & m4).AsSByte());
                        Vector256<sbyte> v2 = Avx2.Shuffle(lut, (wHi & m4).AsSByte());
                        Vector256<sbyte> v3 = Avx2.Shuffle(lut, (Avx2.ShiftRightLogical(wHi.AsUInt16(), 4).AsByte() & m4).AsSByte());
                        Vector256<byte> a0 = Avx2.Sign(v0, v0).AsByte(), a1 = Avx2.Sign(v1, v1).AsByte(), a2 = Avx2.Sign(v2, v2).AsByte(), a3 = Avx2.Sign(v3, v3).AsByte();
                        byte* yb = act + (long)tc * actRowSize + b * 34;
                        int o = half * TokenTile;
                        for (int k = 0; k < tn; k++, yb += actRowSize)
                        {
                            byte* q = yb + 2;
                            Vector256<int> s = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a0, Avx2.Sign(Broadcast256(q), v0)), ones)
                                + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a1, Avx2.Sign(Broadcast256(q + 16), v1)), ones)
                                + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a2, Avx2.Sign(Broadcast256(q + 8), v2)), ones)
                                + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a3, Avx2.Sign(Broadcast256(q + 24), v3)), ones);
                            float dy = F16Kernel.ToFloat(*(ushort*)yb);
                            acc[o + k] = Fma.MultiplyAdd(Sse2.ConvertToVector128Single(RowSums(s)), d4 * Vector128.Create(dy), acc[o + k]);
                        }
                    }
                }
                for (int k = 0; k < tn; k++)
                {
                    float* yr = y + (long)(tc + k) * yStride + r0;
                    acc[k].Store(yr);
                    acc[TokenTile + k].Store(yr + 4);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Broadcast256(byte* p) => Vector256.Create(Unsafe.ReadUnaligned<long>(p)).AsSByte();

    // The two int32 lanes of each of 4 rows (one row per 64-bit lane) added: rows 0-3 in order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> RowSums(Vector256<int> v) => Avx2.Permute4x64(Avx2.HorizontalAdd(v, v).AsInt64(), 0b10_00).AsInt32().GetLower();

    // Byte j of each row's dword (4 rows) as int16 lanes, each repeated four times.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Repeat4Rows(Vector128<byte> rows, int j) =>
        Avx2.ConvertToVector256Int16(Ssse3.Shuffle(rows, Repeat4.GetLower() + Vector128.Create((byte)j))).AsInt16();

    // 32 bytes at p of 4 rows: vector m holds bytes 8m-8m+7 of rows 0-3 (one row per 64-bit lane).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4(byte* p, int rowSize, out Vector256<byte> w0, out Vector256<byte> w1, out Vector256<byte> w2, out Vector256<byte> w3)
    {
        var r0 = Vector256.Load(p).AsUInt64();
        var r1 = Vector256.Load(p + rowSize).AsUInt64();
        var r2 = Vector256.Load(p + 2 * rowSize).AsUInt64();
        var r3 = Vector256.Load(p + 3 * rowSize).AsUInt64();
        Vector256<ulong> a = Avx2.UnpackLow(r0, r1), b = Avx2.UnpackHigh(r0, r1), c = Avx2.UnpackLow(r2, r3), d = Avx2.UnpackHigh(r2, r3);
        w0 = Avx2.Permute2x128(a, c, 0x20).AsByte();
        w1 = Avx2.Permute2x128(b, d, 0x20).AsByte();
        w2 = Avx2.Permute2x128(a, c, 0x31).AsByte();
        w3 = Avx2.Permute2x128(b, d, 0x31).AsByte();
    }
}
