using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
        int nsteps = xxs ? 15 : 9;
        int ntrials = 2 * nsteps + 1;
        int nvec = (ntrials + 7) / 8;
        int stride = 8 * nvec;
        sbyte* Lall = stackalloc sbyte[32 * 32];
        bool* onGridAll = stackalloc bool[32 * 8];
        float* qT = stackalloc float[32 * 32];
        int* lbuf = stackalloc int[32];
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
            for (int i = 0; i < 32; i++)
                for (int trial = ntrials; trial < stride; trial++) qT[i * stride + trial] = 0;

            var one = Vector256.Create(1f);
            var half = Vector256.Create(0.5f);
            var magic = Vector256.Create(12582912f);
            var mantissa = Vector256.Create(0x007fffff);
            var offset = Vector256.Create(0x00400000);
            var top = Vector256.Create(kMaxQ - 1);
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
                Levels(half * (vid * x0 - one) + magic, mantissa, offset, top).Store(lbuf);
                Levels(half * (vid * x1 - one) + magic, mantissa, offset, top).Store(lbuf + 8);
                Levels(half * (vid * x2 - one) + magic, mantissa, offset, top).Store(lbuf + 16);
                Levels(half * (vid * x3 - one) + magic, mantissa, offset, top).Store(lbuf + 24);

                sbyte* La = Lall + 32 * trial;
                bool* og = onGridAll + 8 * trial;
                for (int k = 0; k < 8; k++)
                {
                    int* lk = lbuf + 4 * k;
                    int u = lk[0] | lk[1] << 3 | lk[2] << 6 | lk[3] << 9;
                    int g = map[u];
                    if (g >= 0)
                    {
                        og[k] = true;
                        La[4 * k] = (sbyte)lk[0]; La[4 * k + 1] = (sbyte)lk[1]; La[4 * k + 2] = (sbyte)lk[2]; La[4 * k + 3] = (sbyte)lk[3];
                    }
                    else
                    {
                        og[k] = false;
                        g = BestNeighbour(neighbours + (-g - 1), lanes + laneStart[u], xval + 4 * k, waux + 4 * k, thisScale);
                        sbyte* p = points + 4 * g;
                        La[4 * k] = (sbyte)((p[0] - 1) / 2); La[4 * k + 1] = (sbyte)((p[1] - 1) / 2);
                        La[4 * k + 2] = (sbyte)((p[2] - 1) / 2); La[4 * k + 3] = (sbyte)((p[3] - 1) / 2);
                    }
                }
                for (int i = 0; i < 32; i++) qT[i * stride + trial] = 2 * La[i] + 1;
            }

            for (int v = 0; v < nvec; v++)
            {
                var accx = Vector256<float>.Zero;
                var acc2 = Vector256<float>.Zero;
                float* q = qT + 8 * v;
                for (int i = 0; i < 32; i++)
                {
                    var qi = Vector256.Load(q + i * stride);
                    accx += Vector256.Create(wx[i]) * qi;
                    acc2 += Vector256.Create(weight[i]) * qi * qi;
                }
                accx.Store(sx + 8 * v);
                acc2.Store(s2 + 8 * v);
            }

            float best = 0;
            int winner = -1;
            for (int trial = 0; trial < ntrials; trial++)
            {
                float sumqx = sx[trial], sumq2 = s2[trial];
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
                {
                    scale = sumqx / sumq2; best = scale * sumqx;
                    winner = trial;
                }
            }
            if (winner >= 0)
            {
                new ReadOnlySpan<sbyte>(Lall + 32 * winner, 32).CopyTo(L);
                new ReadOnlySpan<bool>(onGridAll + 8 * winner, 8).CopyTo(isOnGrid);
            }
        }
        return scale;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Levels(Vector256<float> biased, Vector256<int> mantissa, Vector256<int> offset, Vector256<int> top) =>
        Vector256.Max(Vector256.Min((biased.AsInt32() & mantissa) - offset, top), Vector256<int>.Zero);

    /// <summary>
    /// <see cref="Iq3Search.FindBestNeighbour"/> eight candidates at a time: each lane computes one candidate's error
    /// with the scalar code's operations in its order; the winner is the first candidate with the smallest error
    /// below float.MaxValue, which is what the scalar strict comparison picks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int BestNeighbour(ushort* list, sbyte* lanes, float* xval, float* weight, float scale)
    {
        int count = list[0];
        var vs = Vector256.Create(scale);
        var xv0 = Vector256.Create(xval[0]);
        var xv1 = Vector256.Create(xval[1]);
        var xv2 = Vector256.Create(xval[2]);
        var xv3 = Vector256.Create(xval[3]);
        var w0 = Vector256.Create(weight[0]);
        var w1 = Vector256.Create(weight[1]);
        var w2 = Vector256.Create(weight[2]);
        var w3 = Vector256.Create(weight[3]);
        var laneIds = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        var floatMax = Vector256.Create(float.MaxValue);
        var inf = Vector256.Create(float.PositiveInfinity);
        float bestD2 = float.MaxValue;
        int gridIndex = -1;
        for (int c = 0; c < count; c += 8, lanes += 32)
        {
            var p0 = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(lanes));
            var p1 = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(lanes + 8));
            var p2 = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(lanes + 16));
            var p3 = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(lanes + 24));
            var diff = vs * p0 - xv0;
            var d2 = w0 * diff * diff;
            diff = vs * p1 - xv1;
            d2 += w1 * diff * diff;
            diff = vs * p2 - xv2;
            d2 += w2 * diff * diff;
            diff = vs * p3 - xv3;
            d2 += w3 * diff * diff;
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
}
