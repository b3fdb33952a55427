using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

internal static unsafe partial class Repack
{
    /// <summary>Activation rows handled per pass over a group of 8 weight rows (their accumulators stay in L1).</summary>
    private const int TokenTile = 64;

    // The 8x8-qword transpose that gathers the same 8 bytes of 8 rows into one 512-bit vector (ggml's interleaving,
    // done in registers): first pairs of rows into halves, then the halves into rows 0-7.
    private static readonly Vector512<ulong> PairLo = Vector512.Create(0ul, 1, 4, 5, 8, 9, 12, 13);
    private static readonly Vector512<ulong> PairHi = Vector512.Create(2ul, 3, 6, 7, 10, 11, 14, 15);
    private static readonly Vector512<ulong> Even = Vector512.Create(0ul, 2, 4, 6, 8, 10, 12, 14);
    private static readonly Vector512<ulong> Odd = Vector512.Create(1ul, 3, 5, 7, 9, 11, 13, 15);

    // Byte 0 of each dword repeated four times (in each 128-bit lane, the four rows it holds); add j for byte j.
    private static readonly Vector256<byte> Repeat4 = Vector256.Create(
        (byte)0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12, 0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);

    // Bytes 0 and 1 (MinPair0) or 2 and 3 (MinPair1) of each dword as two int16 lanes: a row's mins of two sub-blocks.
    private static readonly Vector256<byte> MinPair0 = Vector256.Create(
        (byte)0, 0x80, 1, 0x80, 4, 0x80, 5, 0x80, 8, 0x80, 9, 0x80, 12, 0x80, 13, 0x80, 0, 0x80, 1, 0x80, 4, 0x80, 5, 0x80, 8, 0x80, 9, 0x80, 12, 0x80, 13, 0x80);
    private static readonly Vector256<byte> MinPair1 = MinPair0 + Vector256.Create((byte)2) & Vector256.Create((byte)0x8F);

    /// <summary>
    /// Q4_K on 512-bit vectors, 8 weight rows at a time: each 64-bit lane holds 8 values of one row, multiplied with the
    /// activation's 8 bytes broadcast to every lane; sub-block sums reach int32 exactly (as in ggml, <c>maddubs</c> then
    /// <c>madd</c> with the 6-bit scale), the two int32 lanes of a row are added, and the float steps are the reference's.
    /// </summary>
    private static void Q4KAvx512(byte* w, int rowSize, int rows, byte* act, int actRowSize, int t0, int t1, int gemmRows,
        int n, float* y, int yStride)
    {
        int nb = n / Q8_K.QK;
        var acc = stackalloc Vector256<float>[TokenTile];
        var accMin = stackalloc Vector256<float>[TokenTile];
        var isum = stackalloc Vector256<int>[TokenTile];
        var imin = stackalloc Vector256<int>[TokenTile];
        var m4 = Vector512.Create((byte)0x0F);
        for (int r0 = 0; r0 < rows; r0 += Interleave)
        {
            byte* x0 = w + (long)r0 * rowSize;
            for (int tc = t0; tc < t1; tc += TokenTile)
            {
                int tn = Math.Min(TokenTile, t1 - tc), gemmEnd = Math.Clamp(gemmRows - tc, 0, tn);
                for (int k = 0; k < tn; k++) acc[k] = accMin[k] = default;
                for (int b = 0; b < nb; b++)
                {
                    byte* xb = x0 + b * Q4KBlockBytes;
                    byte* yb0 = act + (long)tc * actRowSize + b * Q8_K.BlockBytes;
                    if (tc == t0) PrefetchNext(x0, rowSize, b, Q4KBlockBytes);
                    Header8(xb, rowSize, out var d8, out var dmin8, out var sc0123, out var sc4567, out var mn0123, out var mn4567);
                    for (int k = gemmEnd; k < tn; k++) isum[k] = imin[k] = default;
                    for (int sb = 0; sb < 4; sb++)
                    {
                        Vector256<byte> sc = sb < 2 ? sc0123 : sc4567, mn = sb < 2 ? mn0123 : mn4567;
                        Vector512<short> scLo = Repeat(sc, 2 * (sb & 1)), scHi = Repeat(sc, 2 * (sb & 1) + 1);
                        Vector256<short> mins = Avx2.Shuffle(mn, (sb & 1) == 0 ? MinPair0 : MinPair1).AsInt16();
                        Transpose8(xb + Q4KQsOffset + 32 * sb, rowSize, out var w0, out var w1, out var w2, out var w3);
                        Vector512<byte> l0 = w0 & m4, l1 = w1 & m4, l2 = w2 & m4, l3 = w3 & m4;
                        Vector512<byte> h0 = Avx512BW.ShiftRightLogical(w0.AsUInt16(), 4).AsByte() & m4;
                        Vector512<byte> h1 = Avx512BW.ShiftRightLogical(w1.AsUInt16(), 4).AsByte() & m4;
                        Vector512<byte> h2 = Avx512BW.ShiftRightLogical(w2.AsUInt16(), 4).AsByte() & m4;
                        Vector512<byte> h3 = Avx512BW.ShiftRightLogical(w3.AsUInt16(), 4).AsByte() & m4;
                        byte* yb = yb0;
                        for (int k = 0; k < tn; k++, yb += actRowSize)
                        {
                            byte* q = yb + Q8_K.QsOffset + 64 * sb;
                            Vector512<short> lo = Avx512BW.MultiplyAddAdjacent(l0, Broadcast(q))
                                + Avx512BW.MultiplyAddAdjacent(l1, Broadcast(q + 8))
                                + Avx512BW.MultiplyAddAdjacent(l2, Broadcast(q + 16))
                                + Avx512BW.MultiplyAddAdjacent(l3, Broadcast(q + 24));
                            Vector512<short> hi = Avx512BW.MultiplyAddAdjacent(h0, Broadcast(q + 32))
                                + Avx512BW.MultiplyAddAdjacent(h1, Broadcast(q + 40))
                                + Avx512BW.MultiplyAddAdjacent(h2, Broadcast(q + 48))
                                + Avx512BW.MultiplyAddAdjacent(h3, Broadcast(q + 56));
                            Vector512<long> v = (Avx512BW.MultiplyAddAdjacent(lo, scLo) + Avx512BW.MultiplyAddAdjacent(hi, scHi)).AsInt64();
                            Vector256<int> s = Avx512F.ConvertToVector256Int32(v + Avx512F.ShiftRightLogical(v, 32));
                            short* bsums = (short*)(yb + Q8_K.BsumsOffset) + 4 * sb;
                            int pair = (ushort)(bsums[0] + bsums[1]) | (bsums[2] + bsums[3]) << 16;
                            Vector256<int> m = Avx2.MultiplyAddAdjacent(mins, Vector256.Create(pair).AsInt16());
                            AddSums(k, gemmEnd, yb, s, m, d8, dmin8, acc, accMin, isum, imin);
                        }
                    }
                    ScaleGemvSums(gemmEnd, tn, yb0, actRowSize, d8, dmin8, acc, accMin, isum, imin);
                }
                for (int k = 0; k < tn; k++) (acc[k] - accMin[k]).Store(y + (long)(tc + k) * yStride + r0);
            }
        }
    }

    /// <summary>
    /// Q4_0, IQ4_NL and MXFP4 on 512-bit vectors, 8 weight rows at a time: nibbles become signed bytes through the
    /// type's table, each block's products reach int32 exactly (ggml's sign trick: |w| times y with w's sign), the two
    /// int32 lanes of a row are added, and each block is one FMA, as in the reference.
    /// </summary>
    private static void B32Avx512(GgmlType type, sbyte[] values, byte* w, int rowSize, int rows, byte* act, int actRowSize, int t0, int t1,
        int n, float* y, int yStride)
    {
        int nb = n / 32, blockBytes = B32BlockBytes(type), qsOffset = blockBytes - 16;
        var acc = stackalloc Vector256<float>[TokenTile];
        var m4 = Vector512.Create((byte)0x0F);
        var lut = Vector512.Create(Vector128.Create(values.AsSpan()));
        var ones = Vector512.Create((short)1);
        var ones256 = Vector256.Create((short)1);
        var onesU8 = Vector256.Create((byte)1);
        bool q4_0 = type == GgmlType.Q4_0;
        for (int r0 = 0; r0 < rows; r0 += Interleave)
        {
            byte* x0 = w + (long)r0 * rowSize;
            for (int tc = t0; tc < t1; tc += TokenTile)
            {
                int tn = Math.Min(TokenTile, t1 - tc);
                for (int k = 0; k < tn; k++) acc[k] = default;
                for (int b = 0; b < nb; b++)
                {
                    byte* xb = x0 + b * blockBytes;
                    if (tc == t0) PrefetchNext(x0, rowSize, b, blockBytes);
                    Vector256<float> d8 = B32Scales(type, xb, rowSize);
                    byte* q0 = xb + qsOffset;
                    var a = Vector512.Create(Vector256.Create(Vector128.Load(q0), Vector128.Load(q0 + rowSize)),
                        Vector256.Create(Vector128.Load(q0 + 2 * rowSize), Vector128.Load(q0 + 3 * rowSize))).AsUInt64();
                    var c = Vector512.Create(Vector256.Create(Vector128.Load(q0 + 4 * rowSize), Vector128.Load(q0 + 5 * rowSize)),
                        Vector256.Create(Vector128.Load(q0 + 6 * rowSize), Vector128.Load(q0 + 7 * rowSize))).AsUInt64();
                    Vector512<byte> wLo = Avx512F.PermuteVar8x64x2(a, Even, c).AsByte(), wHi = Avx512F.PermuteVar8x64x2(a, Odd, c).AsByte();
                    // Nibbles of values 0-7, 16-23 (from the first 8 bytes), 8-15, 24-31 (from the last 8) of each row.
                    Vector512<byte> u0 = wLo & m4, u1 = Avx512BW.ShiftRightLogical(wLo.AsUInt16(), 4).AsByte() & m4;
                    Vector512<byte> u2 = wHi & m4, u3 = Avx512BW.ShiftRightLogical(wHi.AsUInt16(), 4).AsByte() & m4;
                    byte* yb = act + (long)tc * actRowSize + b * 34;
                    if (q4_0)
                    {
                        // Q4_0's value is nibble - 8: sum nibble * y (unsigned times signed, at most 8 products of
                        // 15 * 127 per int16), then subtract 8 * sum(y); the same integer as ggml's.
                        for (int k = 0; k < tn; k++, yb += actRowSize)
                        {
                            sbyte* q = (sbyte*)(yb + 2);
                            Vector512<short> p = Avx512BW.MultiplyAddAdjacent(u0, Broadcast(q)) + Avx512BW.MultiplyAddAdjacent(u1, Broadcast(q + 16))
                                + Avx512BW.MultiplyAddAdjacent(u2, Broadcast(q + 8)) + Avx512BW.MultiplyAddAdjacent(u3, Broadcast(q + 24));
                            Vector512<long> v = Avx512BW.MultiplyAddAdjacent(p, ones).AsInt64();
                            Vector256<int> row = Avx512F.ConvertToVector256Int32(v + Avx512F.ShiftRightLogical(v, 32));
                            int ysum = Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(onesU8, Vector256.Load(q)), ones256));
                            row -= Vector256.Create(8 * ysum);
                            float dy = F16Kernel.ToFloat(*(ushort*)yb);
                            acc[k] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(row), d8 * Vector256.Create(dy), acc[k]);
                        }
                        continue;
                    }
                    Vector512<sbyte> v0 = Avx512BW.Shuffle(lut, u0.AsSByte()), v1 = Avx512BW.Shuffle(lut, u1.AsSByte());
                    Vector512<sbyte> v2 = Avx512BW.Shuffle(lut, u2.AsSByte()), v3 = Avx512BW.Shuffle(lut, u3.AsSByte());
                    Vector512<byte> a0 = Avx512BW.Abs(v0), a1 = Avx512BW.Abs(v1), a2 = Avx512BW.Abs(v2), a3 = Avx512BW.Abs(v3);
                    Vector512<sbyte> n0 = Vector512.LessThan(v0, Vector512<sbyte>.Zero), n1 = Vector512.LessThan(v1, Vector512<sbyte>.Zero);
                    Vector512<sbyte> n2 = Vector512.LessThan(v2, Vector512<sbyte>.Zero), n3 = Vector512.LessThan(v3, Vector512<sbyte>.Zero);
                    for (int k = 0; k < tn; k++, yb += actRowSize)
                    {
                        sbyte* q = (sbyte*)(yb + 2);
                        Vector512<sbyte> y0 = Broadcast(q).AsSByte(), y1 = Broadcast(q + 16).AsSByte(), y2 = Broadcast(q + 8).AsSByte(), y3 = Broadcast(q + 24).AsSByte();
                        Vector512<int> s = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a0, Vector512.ConditionalSelect(n0, -y0, y0)), ones)
                            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a1, Vector512.ConditionalSelect(n1, -y1, y1)), ones)
                            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a2, Vector512.ConditionalSelect(n2, -y2, y2)), ones)
                            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a3, Vector512.ConditionalSelect(n3, -y3, y3)), ones);
                        Vector512<long> v = s.AsInt64();
                        Vector256<int> row = Avx512F.ConvertToVector256Int32(v + Avx512F.ShiftRightLogical(v, 32));
                        float dy = F16Kernel.ToFloat(*(ushort*)yb);
                        acc[k] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(row), d8 * Vector256.Create(dy), acc[k]);
                    }
                }
                for (int k = 0; k < tn; k++) acc[k].Store(y + (long)(tc + k) * yStride + r0);
            }
        }
    }

    /// <summary>
    /// One token's integer sums of one super-block step for 8 rows: tokens in ggml's gemm part (<paramref name="k"/> below
    /// <paramref name="gemmEnd"/>) are scaled into the float accumulators at once; the gemv tokens keep integer sums until
    /// the super-block ends (<see cref="ScaleGemvSums"/>). Shared by the Q4_K and Q2_K kernels.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddSums(int k, int gemmEnd, byte* yb, Vector256<int> s, Vector256<int> m, Vector256<float> d8,
        Vector256<float> dmin8, Vector256<float>* acc, Vector256<float>* accMin, Vector256<int>* isum, Vector256<int>* imin)
    {
        if (k < gemmEnd)
        {
            float dy = *(float*)yb;
            acc[k] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s), d8 * Vector256.Create(dy), acc[k]);
            accMin[k] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(m), dmin8 * Vector256.Create(dy), accMin[k]);
        }
        else
        {
            isum[k] += s;
            imin[k] += m;
        }
    }

    /// <summary>The gemv tokens' super-block sums into the float accumulators, one FMA each, as ggml's gemv does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleGemvSums(int gemmEnd, int tn, byte* yb0, int actRowSize, Vector256<float> d8, Vector256<float> dmin8,
        Vector256<float>* acc, Vector256<float>* accMin, Vector256<int>* isum, Vector256<int>* imin)
    {
        byte* yb = yb0 + (long)gemmEnd * actRowSize;
        for (int k = gemmEnd; k < tn; k++, yb += actRowSize)
        {
            float dy = *(float*)yb;
            acc[k] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum[k]), d8 * Vector256.Create(dy), acc[k]);
            accMin[k] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(imin[k]), dmin8 * Vector256.Create(dy), accMin[k]);
        }
    }

    // The next group of 8 rows, a contiguous 8 * rowSize bytes, prefetched in nb slices while this group's super-block b
    // is read: this group's reads are 8 streams a row apart, which the hardware prefetchers do not follow well once
    // the weight is larger than the cache.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchNext(byte* group, int rowSize, int b, int blockBytes)
    {
        byte* p = group + Interleave * rowSize + b * Interleave * blockBytes;
        for (int o = 0; o < Interleave * blockBytes; o += 64) Sse.Prefetch0(p + o);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> Broadcast(sbyte* p) => Vector512.Create(Unsafe.ReadUnaligned<long>(p)).AsSByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> Broadcast(byte* p) => Vector512.Create(Unsafe.ReadUnaligned<long>(p)).AsSByte();

    // The fp16 at offset o of 8 rows' blocks, as floats.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Halves(byte* xb, int rowSize, int o) => Vector256.Create(
        F16Kernel.ToFloat(*(ushort*)(xb + o)), F16Kernel.ToFloat(*(ushort*)(xb + rowSize + o)),
        F16Kernel.ToFloat(*(ushort*)(xb + 2 * rowSize + o)), F16Kernel.ToFloat(*(ushort*)(xb + 3 * rowSize + o)),
        F16Kernel.ToFloat(*(ushort*)(xb + 4 * rowSize + o)), F16Kernel.ToFloat(*(ushort*)(xb + 5 * rowSize + o)),
        F16Kernel.ToFloat(*(ushort*)(xb + 6 * rowSize + o)), F16Kernel.ToFloat(*(ushort*)(xb + 7 * rowSize + o)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> B32Scales(GgmlType type, byte* xb, int rowSize)
    {
        if (type != GgmlType.MXFP4) return Halves(xb, rowSize, 0);
        return Vector256.Create(
            Numerics.E8M0.ToFloatHalf(xb[0]), Numerics.E8M0.ToFloatHalf(xb[rowSize]),
            Numerics.E8M0.ToFloatHalf(xb[2 * rowSize]), Numerics.E8M0.ToFloatHalf(xb[3 * rowSize]),
            Numerics.E8M0.ToFloatHalf(xb[4 * rowSize]), Numerics.E8M0.ToFloatHalf(xb[5 * rowSize]),
            Numerics.E8M0.ToFloatHalf(xb[6 * rowSize]), Numerics.E8M0.ToFloatHalf(xb[7 * rowSize]));
    }

    // Byte j of each row's dword (row r in dword r) as int16 lanes, each repeated four times (row r in lanes 4r-4r+3).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Repeat(Vector256<byte> rows, int j) => Avx512BW.ConvertToVector512Int16(Avx2.Shuffle(rows, Repeat4 + Vector256.Create((byte)j))).AsInt16();

    // 32 bytes at p of 8 rows: vector m holds bytes 8m-8m+7 of rows 0-7 (one row per 64-bit lane).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(byte* p, int rowSize, out Vector512<byte> w0, out Vector512<byte> w1, out Vector512<byte> w2, out Vector512<byte> w3)
    {
        var p0 = Vector512.Create(Vector256.Load(p), Vector256.Load(p + rowSize)).AsUInt64();
        var p1 = Vector512.Create(Vector256.Load(p + 2 * rowSize), Vector256.Load(p + 3 * rowSize)).AsUInt64();
        var p2 = Vector512.Create(Vector256.Load(p + 4 * rowSize), Vector256.Load(p + 5 * rowSize)).AsUInt64();
        var p3 = Vector512.Create(Vector256.Load(p + 6 * rowSize), Vector256.Load(p + 7 * rowSize)).AsUInt64();
        var xLo = Avx512F.PermuteVar8x64x2(p0, PairLo, p1); // rows 0-3, bytes 0-15
        var xHi = Avx512F.PermuteVar8x64x2(p0, PairHi, p1); // rows 0-3, bytes 16-31
        var yLo = Avx512F.PermuteVar8x64x2(p2, PairLo, p3);
        var yHi = Avx512F.PermuteVar8x64x2(p2, PairHi, p3);
        w0 = Avx512F.PermuteVar8x64x2(xLo, Even, yLo).AsByte();
        w1 = Avx512F.PermuteVar8x64x2(xLo, Odd, yLo).AsByte();
        w2 = Avx512F.PermuteVar8x64x2(xHi, Even, yHi).AsByte();
        w3 = Avx512F.PermuteVar8x64x2(xHi, Odd, yHi).AsByte();
    }

    // The first 16 bytes of 8 rows' Q4_K blocks (d, dmin, 12 bytes of packed scales and mins), transposed to one row per
    // dword and unpacked as ggml unpacks them: d8 and dmin8 as floats, sc0123 with bytes 0-3 of row r's dword = its scales
    // 0-3 (sc4567: 4-7), mn0123 and mn4567 the same for the mins.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Header8(byte* xb, int rowSize, out Vector256<float> d8, out Vector256<float> dmin8,
        out Vector256<byte> sc0123, out Vector256<byte> sc4567, out Vector256<byte> mn0123, out Vector256<byte> mn4567)
    {
        Dwords8(xb, rowSize, out var h, out var t0, out var t1, out var t2);
        d8 = F16Kernel.Widen(h & Vector256.Create(0xFFFFu));
        dmin8 = F16Kernel.Widen(h >>> 16);
        Vector256<uint> k1 = Vector256.Create(0x3f3f3f3fu), k2 = Vector256.Create(0x0f0f0f0fu), k3 = Vector256.Create(0x03030303u);
        sc0123 = (t0 & k1).AsByte();
        sc4567 = ((t2 & k2) | (((t0 >>> 6) & k3) << 4)).AsByte();
        mn0123 = (t1 & k1).AsByte();
        mn4567 = (((t2 >>> 4) & k2) | (((t1 >>> 6) & k3) << 4)).AsByte();
    }

    // The first 16 bytes of 8 rows as four vectors of dwords: d[c] holds dword c of row r in dword r (rows 0-3 in the
    // low 128 bits, 4-7 in the high).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dwords8(byte* xb, int rowSize, out Vector256<uint> d0, out Vector256<uint> d1, out Vector256<uint> d2, out Vector256<uint> d3)
    {
        Vector256<uint> a0 = Vector256.Create(Vector128.Load(xb), Vector128.Load(xb + 4 * rowSize)).AsUInt32();
        Vector256<uint> a1 = Vector256.Create(Vector128.Load(xb + rowSize), Vector128.Load(xb + 5 * rowSize)).AsUInt32();
        Vector256<uint> a2 = Vector256.Create(Vector128.Load(xb + 2 * rowSize), Vector128.Load(xb + 6 * rowSize)).AsUInt32();
        Vector256<uint> a3 = Vector256.Create(Vector128.Load(xb + 3 * rowSize), Vector128.Load(xb + 7 * rowSize)).AsUInt32();
        Vector256<uint> lo01 = Avx2.UnpackLow(a0, a1), lo23 = Avx2.UnpackLow(a2, a3), hi01 = Avx2.UnpackHigh(a0, a1), hi23 = Avx2.UnpackHigh(a2, a3);
        d0 = Avx2.UnpackLow(lo01.AsUInt64(), lo23.AsUInt64()).AsUInt32();
        d1 = Avx2.UnpackHigh(lo01.AsUInt64(), lo23.AsUInt64()).AsUInt32();
        d2 = Avx2.UnpackLow(hi01.AsUInt64(), hi23.AsUInt64()).AsUInt32();
        d3 = Avx2.UnpackHigh(hi01.AsUInt64(), hi23.AsUInt64()).AsUInt32();
    }
}
