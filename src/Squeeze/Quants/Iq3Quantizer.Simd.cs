using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal static partial class Iq3Quantizer
{
    /// <summary>
    /// The trial scan of <see cref="ScanScalar"/>, reorganised for speed with identical results: first every trial's
    /// levels (the rounding vectorised over elements, which is element-wise), then the least-squares sums of all
    /// trials at once with one trial per vector lane (each lane still adds its 32 terms in ggml's order, so no float
    /// sum is reassociated), then the winner chosen in trial order as ggml does.
    /// </summary>
    [SkipLocalsInit]
    private static unsafe float ScanAvx2(Iq3Search t, bool xxs, float max, ReadOnlySpan<float> xvalSpan, ReadOnlySpan<float> weightSpan,
        ReadOnlySpan<float> wauxSpan, Span<sbyte> L, Span<bool> isOnGrid, float scale)
    {
        // Sixteen-wide neighbour search only pays for the 512-point grid's longer lists (3 distances, up to 38 points).
        bool wide = !xxs && Simd.Level >= SimdLevel.Avx512 && Vector512.IsHardwareAccelerated;
        int nsteps = xxs ? 15 : 9;
        int ntrials = 2 * nsteps + 1;
        int nvec = (ntrials + 7) / 8;
        int* Lall = stackalloc int[32 * 32];    // [trial][element] levels
        float* Q = stackalloc float[32 * 32];   // [trial][element] 2l+1; trials past ntrials stay 0
        byte* offGrid = stackalloc byte[32];    // per trial: bit k set when group k was off the grid
        int* ubuf = stackalloc int[8];
        int* gbuf = stackalloc int[8];
        float* wx = stackalloc float[32];
        float* sx = stackalloc float[32];
        float* s2 = stackalloc float[32];

        fixed (float* xval = xvalSpan)
        fixed (float* weight = weightSpan)
        fixed (float* waux = wauxSpan)
        fixed (int* map = t.Map)
        fixed (ushort* neighbours = t.Neighbours)
        fixed (sbyte* points = t.Points)
        fixed (sbyte* lanes = t.NeighbourLanes)
        fixed (int* laneStart = t.LaneStart)
        {
            for (int i = 0; i < 32; i++) wx[i] = weight[i] * xval[i];
            new Span<float>(Q + 32 * ntrials, 32 * (8 * nvec - ntrials)).Clear();

            var one = Vector256.Create(1f);
            var half = Vector256.Create(0.5f);
            var magic = Vector256.Create(12582912f);
            var mantissa = Vector256.Create(0x007fffff);
            var offset = Vector256.Create(0x00400000);
            var top = Vector256.Create(kMaxQ - 1);
            var shifts = Vector256.Create(0u, 3, 6, 9, 0, 3, 6, 9);
            var groupOrder = Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7);
            var x0 = Vector256.Load(xval);
            var x1 = Vector256.Load(xval + 8);
            var x2 = Vector256.Load(xval + 16);
            var x3 = Vector256.Load(xval + 24);

            for (int trial = 0; trial < ntrials; trial++)
            {
                int step = trial - nsteps;
                float id = (2 * kMaxQ - 1 + step * 0.2f) / max;
                float thisScale = 1 / id;
                var vid = Vector256.Create(id);
                // nearest_int(0.5f * (id * x - 1)) clamped to [0, 7], as the scalar code does it, eight at a time.
                var l0 = Levels(half * (vid * x0 - one) + magic, mantissa, offset, top);
                var l1 = Levels(half * (vid * x1 - one) + magic, mantissa, offset, top);
                var l2 = Levels(half * (vid * x2 - one) + magic, mantissa, offset, top);
                var l3 = Levels(half * (vid * x3 - one) + magic, mantissa, offset, top);
                int* La = Lall + 32 * trial;
                float* Qa = Q + 32 * trial;
                l0.Store(La); l1.Store(La + 8); l2.Store(La + 16); l3.Store(La + 24);
                var two = Vector256.Create(2);
                var oneI = Vector256<int>.One;
                Avx.ConvertToVector256Single(l0 * two + oneI).Store(Qa);
                Avx.ConvertToVector256Single(l1 * two + oneI).Store(Qa + 8);
                Avx.ConvertToVector256Single(l2 * two + oneI).Store(Qa + 16);
                Avx.ConvertToVector256Single(l3 * two + oneI).Store(Qa + 24);

                // u = l0 | l1 << 3 | l2 << 6 | l3 << 9 for the eight groups, then their map entries.
                var h1 = Avx2.HorizontalAdd(Avx2.ShiftLeftLogicalVariable(l0, shifts), Avx2.ShiftLeftLogicalVariable(l1, shifts));
                var h2 = Avx2.HorizontalAdd(Avx2.ShiftLeftLogicalVariable(l2, shifts), Avx2.ShiftLeftLogicalVariable(l3, shifts));
                var u = Avx2.PermuteVar8x32(Avx2.HorizontalAdd(h1, h2), groupOrder);
                var g = Avx2.GatherVector256(map, u, 4);
                int off = Avx.MoveMask(g.AsSingle());
                offGrid[trial] = (byte)off;
                if (off == 0) continue;
                u.Store(ubuf);
                g.Store(gbuf);
                do
                {
                    int k = BitOperations.TrailingZeroCount(off);
                    off &= off - 1;
                    int best = wide
                        ? BestNeighbour16(neighbours + (-gbuf[k] - 1), lanes + laneStart[ubuf[k]], xval + 4 * k, waux + 4 * k, thisScale)
                        : BestNeighbour(neighbours + (-gbuf[k] - 1), lanes + laneStart[ubuf[k]], xval + 4 * k, waux + 4 * k, thisScale);
                    // The winner's odd levels p (1..15): q = p and l = (p - 1) / 2.
                    var p = Sse41.ConvertToVector128Int32(points + 4 * best);
                    Sse2.ShiftRightArithmetic(p - Vector128<int>.One, 1).Store(La + 4 * k);
                    Sse2.ConvertToVector128Single(p).Store(Qa + 4 * k);
                } while (off != 0);
            }

            // Lane j of chunk v is trial 8v + j: transpose 8 x 8 tiles of Q so each step reads element i of eight
            // trials, and every lane still adds its terms for i = 0..31 in order.
            for (int v = 0; v < nvec; v++)
            {
                var accx = Vector256<float>.Zero;
                var acc2 = Vector256<float>.Zero;
                float* rows = Q + 32 * 8 * v;
                for (int e = 0; e < 32; e += 8)
                {
                    Transpose8x8(rows + e, out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7);
                    Accumulate(c0, wx[e], weight[e], ref accx, ref acc2);
                    Accumulate(c1, wx[e + 1], weight[e + 1], ref accx, ref acc2);
                    Accumulate(c2, wx[e + 2], weight[e + 2], ref accx, ref acc2);
                    Accumulate(c3, wx[e + 3], weight[e + 3], ref accx, ref acc2);
                    Accumulate(c4, wx[e + 4], weight[e + 4], ref accx, ref acc2);
                    Accumulate(c5, wx[e + 5], weight[e + 5], ref accx, ref acc2);
                    Accumulate(c6, wx[e + 6], weight[e + 6], ref accx, ref acc2);
                    Accumulate(c7, wx[e + 7], weight[e + 7], ref accx, ref acc2);
                }
                accx.Store(sx + 8 * v);
                acc2.Store(s2 + 8 * v);
            }

            float bestErr = 0;
            int winner = -1;
            for (int trial = 0; trial < ntrials; trial++)
            {
                float sumqx = sx[trial], sumq2 = s2[trial];
                if (sumq2 > 0 && sumqx * sumqx > bestErr * sumq2)
                {
                    scale = sumqx / sumq2; bestErr = scale * sumqx;
                    winner = trial;
                }
            }
            if (winner >= 0)
            {
                for (int i = 0; i < 32; i++) L[i] = (sbyte)Lall[32 * winner + i];
                for (int k = 0; k < 8; k++) isOnGrid[k] = (offGrid[winner] >> k & 1) == 0;
            }
        }
        return scale;
    }

    /// <summary>
    /// The element-wise start of a sub-block, eight at a time: <c>waux = sqrt(weight)</c>, <c>xval = |x|</c> as the
    /// scalar code forms it (<c>x &gt;= 0 ? x : -x</c>, so -0 stays -0 and NaN is negated) and per group of eight the
    /// bits of the elements that are not <c>&gt;= 0</c>.
    /// </summary>
    private static unsafe void SplitSignsAvx2(ReadOnlySpan<float> xbSpan, ReadOnlySpan<float> weightSpan, Span<float> xvalSpan,
        Span<float> wauxSpan, Span<int> negatives)
    {
        fixed (float* xb = xbSpan)
        fixed (float* weight = weightSpan)
        fixed (float* xval = xvalSpan)
        fixed (float* waux = wauxSpan)
        {
            for (int k = 0; k < 4; k++)
            {
                Vector256.Sqrt(Vector256.Load(weight + 8 * k)).Store(waux + 8 * k);
                var x = Vector256.Load(xb + 8 * k);
                var nonNegative = Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero);
                Vector256.ConditionalSelect(nonNegative, x, x ^ Vector256.Create(-0f)).Store(xval + 8 * k);
                negatives[k] = ~Avx.MoveMask(nonNegative) & 0xff;
            }
        }
    }

    /// <summary>The SIMD neighbour search for the off-grid point <paramref name="u"/> (used by the refit after the scan).</summary>
    private static unsafe int BestNeighbourAvx2(Iq3Search t, int u, ReadOnlySpan<float> xval, ReadOnlySpan<float> weight, float scale)
    {
        fixed (ushort* neighbours = t.Neighbours)
        fixed (sbyte* lanes = t.NeighbourLanes)
        fixed (float* x = xval)
        fixed (float* w = weight)
            return BestNeighbour(neighbours + (-t.Map[u] - 1), lanes + t.LaneStart[u], x, w, scale);
    }

    /// <summary>One least-squares step for eight trials: <c>sumqx += (w*x) * q</c>, <c>sumq2 += (w*q) * q</c>, as ggml orders them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(Vector256<float> q, float wx, float w, ref Vector256<float> accx, ref Vector256<float> acc2)
    {
        accx += Vector256.Create(wx) * q;
        acc2 += Vector256.Create(w) * q * q;
    }

    /// <summary>Columns of the 8 x 8 tile whose rows are eight floats at <paramref name="p"/>, 32 floats apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Transpose8x8(float* p, out Vector256<float> c0, out Vector256<float> c1, out Vector256<float> c2,
        out Vector256<float> c3, out Vector256<float> c4, out Vector256<float> c5, out Vector256<float> c6, out Vector256<float> c7)
    {
        var r0 = Avx.LoadVector256(p);
        var r1 = Avx.LoadVector256(p + 32);
        var r2 = Avx.LoadVector256(p + 64);
        var r3 = Avx.LoadVector256(p + 96);
        var r4 = Avx.LoadVector256(p + 128);
        var r5 = Avx.LoadVector256(p + 160);
        var r6 = Avx.LoadVector256(p + 192);
        var r7 = Avx.LoadVector256(p + 224);
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44);
        var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44);
        var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44);
        var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44);
        var u7 = Avx.Shuffle(t5, t7, 0xEE);
        c0 = Avx.Permute2x128(u0, u4, 0x20);
        c1 = Avx.Permute2x128(u1, u5, 0x20);
        c2 = Avx.Permute2x128(u2, u6, 0x20);
        c3 = Avx.Permute2x128(u3, u7, 0x20);
        c4 = Avx.Permute2x128(u0, u4, 0x31);
        c5 = Avx.Permute2x128(u1, u5, 0x31);
        c6 = Avx.Permute2x128(u2, u6, 0x31);
        c7 = Avx.Permute2x128(u3, u7, 0x31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Levels(Vector256<float> biased, Vector256<int> mantissa, Vector256<int> offset, Vector256<int> top) =>
        Vector256.Max(Vector256.Min((biased.AsInt32() & mantissa) - offset, top), Vector256<int>.Zero);

    /// <summary>
    /// <see cref="Iq3Search.FindBestNeighbour"/> eight candidates at a time. A coordinate takes one of eight levels,
    /// so its error term <c>w * (scale*q - x) * (scale*q - x)</c> is computed once per level (the scalar code's
    /// operations, so the same floats) and looked up per candidate with <c>vpermps</c>; the four terms are added in
    /// the scalar order. The winner is the first candidate with the smallest error below float.MaxValue, which is
    /// what the scalar strict comparison picks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int BestNeighbour(ushort* list, sbyte* lanes, float* xval, float* weight, float scale)
    {
        int count = list[0];
        var q = Vector256.Create(scale) * Vector256.Create(1f, 3f, 5f, 7f, 9f, 11f, 13f, 15f);
        var diff = q - Vector256.Create(xval[0]);
        var t0 = Vector256.Create(weight[0]) * diff * diff;
        diff = q - Vector256.Create(xval[1]);
        var t1 = Vector256.Create(weight[1]) * diff * diff;
        diff = q - Vector256.Create(xval[2]);
        var t2 = Vector256.Create(weight[2]) * diff * diff;
        diff = q - Vector256.Create(xval[3]);
        var t3 = Vector256.Create(weight[3]) * diff * diff;
        var laneIds = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        var floatMax = Vector256.Create(float.MaxValue);
        var inf = Vector256.Create(float.PositiveInfinity);
        float bestD2 = float.MaxValue;
        int gridIndex = -1;
        for (int c = 0; c < count; c += 8, lanes += 32)
        {
            var d2 = Avx2.PermuteVar8x32(t0, Avx2.ConvertToVector256Int32(lanes));
            d2 += Avx2.PermuteVar8x32(t1, Avx2.ConvertToVector256Int32(lanes + 8));
            d2 += Avx2.PermuteVar8x32(t2, Avx2.ConvertToVector256Int32(lanes + 16));
            d2 += Avx2.PermuteVar8x32(t3, Avx2.ConvertToVector256Int32(lanes + 24));
            // Padding lanes, and errors the scalar comparison with float.MaxValue rejects (Inf, NaN), never win.
            var valid = Vector256.LessThan(d2, floatMax) & Vector256.LessThan(laneIds, Vector256.Create(count - c)).AsSingle();
            d2 = Vector256.ConditionalSelect(valid, d2, inf);
            var m = Avx.Min(d2, Avx.Permute2x128(d2, d2, 1));
            m = Avx.Min(m, Avx.Permute(m, 0b01_00_11_10));
            m = Avx.Min(m, Avx.Permute(m, 0b10_11_00_01));
            float chunkMin = m.ToScalar();
            if (chunkMin < bestD2)
            {
                bestD2 = chunkMin;
                int equal = Avx.MoveMask(Avx.CompareEqual(d2, m));
                gridIndex = list[1 + c + BitOperations.TrailingZeroCount(equal)];
            }
        }
        if (gridIndex < 0) throw new InvalidOperationException("IQ3 quantizer: no neighbour has a finite error (non-finite input); ggml aborts here too");
        return gridIndex;
    }

    /// <summary>
    /// <see cref="BestNeighbour"/> sixteen candidates at a time (AVX-512): two chunks of the lane table per step,
    /// so the longer lists of the 512-point grid need one step where eight lanes need two.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int BestNeighbour16(ushort* list, sbyte* lanes, float* xval, float* weight, float scale)
    {
        int count = list[0];
        var q = Vector256.Create(scale) * Vector256.Create(1f, 3f, 5f, 7f, 9f, 11f, 13f, 15f);
        var diff = q - Vector256.Create(xval[0]);
        var t0 = Vector256.Create(weight[0]) * diff * diff;
        diff = q - Vector256.Create(xval[1]);
        var t1 = Vector256.Create(weight[1]) * diff * diff;
        diff = q - Vector256.Create(xval[2]);
        var t2 = Vector256.Create(weight[2]) * diff * diff;
        diff = q - Vector256.Create(xval[3]);
        var t3 = Vector256.Create(weight[3]) * diff * diff;
        var w0 = Vector512.Create(t0, t0);
        var w1 = Vector512.Create(t1, t1);
        var w2 = Vector512.Create(t2, t2);
        var w3 = Vector512.Create(t3, t3);
        var laneIds = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        var floatMax = Vector512.Create(float.MaxValue);
        var inf = Vector512.Create(float.PositiveInfinity);
        float bestD2 = float.MaxValue;
        int gridIndex = -1;
        for (int c = 0; c < count; c += 16, lanes += 64)
        {
            var d2 = Avx512F.PermuteVar16x32(w0, Levels16(lanes));
            d2 += Avx512F.PermuteVar16x32(w1, Levels16(lanes + 8));
            d2 += Avx512F.PermuteVar16x32(w2, Levels16(lanes + 16));
            d2 += Avx512F.PermuteVar16x32(w3, Levels16(lanes + 24));
            var valid = Vector512.LessThan(d2, floatMax) & Vector512.LessThan(laneIds, Vector512.Create(count - c)).AsSingle();
            d2 = Vector512.ConditionalSelect(valid, d2, inf);
            var m = Avx.Min(d2.GetLower(), d2.GetUpper());
            m = Avx.Min(m, Avx.Permute2x128(m, m, 1));
            m = Avx.Min(m, Avx.Permute(m, 0b01_00_11_10));
            m = Avx.Min(m, Avx.Permute(m, 0b10_11_00_01));
            float chunkMin = m.ToScalar();
            if (chunkMin < bestD2)
            {
                bestD2 = chunkMin;
                ulong equal = Vector512.Equals(d2, Vector512.Create(chunkMin)).ExtractMostSignificantBits();
                gridIndex = list[1 + c + BitOperations.TrailingZeroCount(equal)];
            }
        }
        if (gridIndex < 0) throw new InvalidOperationException("IQ3 quantizer: no neighbour has a finite error (non-finite input); ggml aborts here too");
        return gridIndex;
    }

    /// <summary>Row <c>i</c> of two consecutive chunks (8 levels each, 32 bytes apart) as sixteen int32 indices.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector512<int> Levels16(sbyte* row) =>
        Avx512F.ConvertToVector512Int32(Vector128.Create(*(ulong*)row, *(ulong*)(row + 32)).AsSByte());
}
