using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

internal static unsafe partial class Repack
{
    private const int Q2KBlockBytes = 84, Q2KQsOffset = 16, Q2KDOffset = 80;

    /// <summary>
    /// The scalar reference for Q2_K (repacked by ggml-cpu only with AVX-512): gemv rows one FMA per super-block (the 16
    /// scaled group sums; separately the mins times Q8_K's 16 group sums), gemm rows one per half super-block (128 values).
    /// </summary>
    internal static void Q2KScalar(byte* w, int rowSize, int rows, byte* act, int actRowSize, int t0, int t1, int gemmRows,
        int n, float* y, int yStride)
    {
        int nb = n / Q8_K.QK;
        Span<int> dot = stackalloc int[16];
        for (int t = t0; t < t1; t++)
        {
            bool gemm = t < gemmRows;
            for (int r = 0; r < rows; r++)
            {
                float acc = 0, accMin = 0;
                for (int b = 0; b < nb; b++)
                {
                    byte* xb = w + (long)r * rowSize + b * Q2KBlockBytes;
                    byte* yb = act + (long)t * actRowSize + b * Q8_K.BlockBytes;
                    sbyte* q8 = (sbyte*)(yb + Q8_K.QsOffset);
                    short* bsums = (short*)(yb + Q8_K.BsumsOffset);
                    // Group g = 8h + 2p + (l >= 16) holds element 128h + 32p + l, bits 2p of byte 32h + l.
                    for (int g = 0; g < 16; g++)
                    {
                        int h = g / 8, p = (g % 8) / 2, l0 = 16 * (g % 2), s = 0;
                        byte* qs = xb + Q2KQsOffset + 32 * h;
                        for (int l = l0; l < l0 + 16; l++) s += ((qs[l] >> (2 * p)) & 3) * q8[128 * h + 32 * p + l];
                        dot[g] = s;
                    }
                    float dy = *(float*)yb;
                    float dd = F16Kernel.ToFloat(*(ushort*)(xb + Q2KDOffset)) * dy;
                    float ddMin = F16Kernel.ToFloat(*(ushort*)(xb + Q2KDOffset + 2)) * dy;
                    if (gemm)
                    {
                        for (int h = 0; h < 2; h++)
                        {
                            int isum = 0, imin = 0;
                            for (int g = 8 * h; g < 8 * h + 8; g++)
                            {
                                isum += (xb[g] & 0xF) * dot[g];
                                imin += (xb[g] >> 4) * bsums[g];
                            }
                            acc = MathF.FusedMultiplyAdd(isum, dd, acc);
                            accMin = MathF.FusedMultiplyAdd(imin, ddMin, accMin);
                        }
                    }
                    else
                    {
                        int isum = 0, imin = 0;
                        for (int g = 0; g < 16; g++)
                        {
                            isum += (xb[g] & 0xF) * dot[g];
                            imin += (xb[g] >> 4) * bsums[g];
                        }
                        acc = MathF.FusedMultiplyAdd(isum, dd, acc);
                        accMin = MathF.FusedMultiplyAdd(imin, ddMin, accMin);
                    }
                }
                y[(long)t * yStride + r] = acc - accMin;
            }
        }
    }

    /// <summary>
    /// Q2_K on 512-bit vectors, 8 weight rows at a time, as <see cref="Q4KAvx512"/>: each 64-bit lane holds 8 bytes of one
    /// row's 2-bit quants, shifted out four times; group sums reach int32 exactly and the float steps are the reference's.
    /// </summary>
    private static void Q2KAvx512(byte* w, int rowSize, int rows, byte* act, int actRowSize, int t0, int t1, int gemmRows,
        int n, float* y, int yStride)
    {
        int nb = n / Q8_K.QK;
        var acc = stackalloc Vector256<float>[TokenTile];
        var accMin = stackalloc Vector256<float>[TokenTile];
        var isum = stackalloc Vector256<int>[TokenTile];
        var imin = stackalloc Vector256<int>[TokenTile];
        var m3 = Vector512.Create((byte)3);
        var bits = stackalloc Vector512<byte>[16];
        var scales = stackalloc Vector512<short>[8];
        var m4 = Vector256.Create((byte)0x0F);
        for (int r0 = 0; r0 < rows; r0 += Interleave)
        {
            byte* x0 = w + (long)r0 * rowSize;
            for (int tc = t0; tc < t1; tc += TokenTile)
            {
                int tn = Math.Min(TokenTile, t1 - tc), gemmEnd = Math.Clamp(gemmRows - tc, 0, tn);
                for (int k = 0; k < tn; k++) acc[k] = accMin[k] = default;
                for (int b = 0; b < nb; b++)
                {
                    byte* xb = x0 + b * Q2KBlockBytes;
                    byte* yb0 = act + (long)tc * actRowSize + b * Q8_K.BlockBytes;
                    if (tc == t0) PrefetchNext(x0, rowSize, b, Q2KBlockBytes);
                    Vector256<uint> dd = Vector256.Create(
                        *(uint*)(xb + Q2KDOffset), *(uint*)(xb + rowSize + Q2KDOffset), *(uint*)(xb + 2 * rowSize + Q2KDOffset), *(uint*)(xb + 3 * rowSize + Q2KDOffset),
                        *(uint*)(xb + 4 * rowSize + Q2KDOffset), *(uint*)(xb + 5 * rowSize + Q2KDOffset), *(uint*)(xb + 6 * rowSize + Q2KDOffset), *(uint*)(xb + 7 * rowSize + Q2KDOffset));
                    Vector256<float> d8 = F16Kernel.Widen(dd & Vector256.Create(0xFFFFu)), dmin8 = F16Kernel.Widen(dd >>> 16);
                    // Scales and mins of groups 4c-4c+3 in dword r (row r) of s[c].
                    Dwords8(xb, rowSize, out var s0, out var s1, out var s2, out var s3);
                    for (int k = gemmEnd; k < tn; k++) isum[k] = imin[k] = default;
                    for (int h = 0; h < 2; h++)
                    {
                        Vector256<byte> sA = (h == 0 ? s0 : s2).AsByte(), sB = (h == 0 ? s1 : s3).AsByte();
                        Vector256<byte> scA = sA & m4, scB = sB & m4;
                        Vector256<byte> mnA = Avx2.ShiftRightLogical(sA.AsUInt16(), 4).AsByte() & m4, mnB = Avx2.ShiftRightLogical(sB.AsUInt16(), 4).AsByte() & m4;
                        Vector256<short> min01 = Avx2.Shuffle(mnA, MinPair0).AsInt16(), min23 = Avx2.Shuffle(mnA, MinPair1).AsInt16();
                        Vector256<short> min45 = Avx2.Shuffle(mnB, MinPair0).AsInt16(), min67 = Avx2.Shuffle(mnB, MinPair1).AsInt16();
                        Transpose8(xb + Q2KQsOffset + 32 * h, rowSize, out var w0, out var w1, out var w2, out var w3);
                        // Bits 2p of the four vectors: groups 8h + 2p (bytes 0-15 of each row) and 8h + 2p + 1 (16-31).
                        for (int p = 0; p < 4; p++)
                        {
                            bits[4 * p] = (w0.AsUInt16() >>> (2 * p)).AsByte() & m3;
                            bits[4 * p + 1] = (w1.AsUInt16() >>> (2 * p)).AsByte() & m3;
                            bits[4 * p + 2] = (w2.AsUInt16() >>> (2 * p)).AsByte() & m3;
                            bits[4 * p + 3] = (w3.AsUInt16() >>> (2 * p)).AsByte() & m3;
                            Vector256<byte> sc = p < 2 ? scA : scB;
                            scales[2 * p] = Repeat(sc, 2 * (p & 1));
                            scales[2 * p + 1] = Repeat(sc, 2 * (p & 1) + 1);
                        }
                        byte* yb = yb0;
                        for (int k = 0; k < tn; k++, yb += actRowSize)
                        {
                            byte* q = yb + Q8_K.QsOffset + 128 * h;
                            Vector512<int> v = default;
                            for (int p = 0; p < 4; p++)
                            {
                                byte* qp = q + 32 * p;
                                Vector512<short> g0 = Avx512BW.MultiplyAddAdjacent(bits[4 * p], Broadcast(qp)) + Avx512BW.MultiplyAddAdjacent(bits[4 * p + 1], Broadcast(qp + 8));
                                Vector512<short> g1 = Avx512BW.MultiplyAddAdjacent(bits[4 * p + 2], Broadcast(qp + 16)) + Avx512BW.MultiplyAddAdjacent(bits[4 * p + 3], Broadcast(qp + 24));
                                v += Avx512BW.MultiplyAddAdjacent(g0, scales[2 * p]) + Avx512BW.MultiplyAddAdjacent(g1, scales[2 * p + 1]);
                            }
                            Vector512<long> v64 = v.AsInt64();
                            Vector256<int> s = Avx512F.ConvertToVector256Int32(v64 + Avx512F.ShiftRightLogical(v64, 32));
                            Vector256<short> bs = Vector256.Create(Vector128.Load((short*)(yb + Q8_K.BsumsOffset) + 8 * h));
                            Vector256<int> m = Avx2.MultiplyAddAdjacent(min01, Avx2.Shuffle(bs.AsInt32(), 0x00).AsInt16())
                                + Avx2.MultiplyAddAdjacent(min23, Avx2.Shuffle(bs.AsInt32(), 0x55).AsInt16())
                                + Avx2.MultiplyAddAdjacent(min45, Avx2.Shuffle(bs.AsInt32(), 0xAA).AsInt16())
                                + Avx2.MultiplyAddAdjacent(min67, Avx2.Shuffle(bs.AsInt32(), 0xFF).AsInt16());
                            AddSums(k, gemmEnd, yb, s, m, d8, dmin8, acc, accMin, isum, imin);
                        }
                    }
                    ScaleGemvSums(gemmEnd, tn, yb0, actRowSize, d8, dmin8, acc, accMin, isum, imin);
                }
                for (int k = 0; k < tn; k++) (acc[k] - accMin[k]).Store(y + (long)(tc + k) * yStride + r0);
            }
        }
    }
}
