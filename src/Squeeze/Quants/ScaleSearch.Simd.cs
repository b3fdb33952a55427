using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// Faster forms of the searches for groups of 8k values. Only element-wise work is vectorized (the level of each
// value, its products with weight and value): every such float operation is the same IEEE operation on the same
// operands as in the scalar code, so it rounds identically. The sums over the group stay scalar and run in
// element order, exactly as ggml adds them, so the results are bit-identical to the scalar reference.
internal static partial class ScaleSearch
{
    /// <summary>Whether the element-wise vector forms may run (they are exact; the switch exists for the SIMD-level tests).</summary>
    private static bool UseVectors
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Simd.Level >= SimdLevel.Avx2 && Vector256.IsHardwareAccelerated;
    }

    private const int MaxGroup = 64;

    /// <summary>nearest_int on eight lanes: the 1.5·2^23 trick, which is exact per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> NearestIntV(Vector256<float> v) =>
        ((v + Vector256.Create(12582912f)).AsInt32() & Vector256.Create(0x007fffff)) - Vector256.Create(0x00400000);

    // make_qkx2_quants / make_qkx3_quants over a group whose weights are already known (x² filled in by the caller
    // for make_qkx3_quants without weights). `degenerateWhenLess` selects qkx3's `max <= min` over qkx2's `max == min`.
    private static unsafe float MakeQkxVector(int n, int nmax, float* x, float* w, Span<byte> L, out float theMin,
        Span<byte> Laux, float rmin, float rdelta, int nstep, bool useMad, bool degenerateWhenLess)
    {
        float min = x[0], max = x[0];
        float sumW = w[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; ++i)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float wi = w[i];
            sumW += wi;
            sumX += wi * x[i];
        }
        if (min > 0) min = 0;
        if (degenerateWhenLess ? max <= min : max == min)
        {
            L[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float* xm = stackalloc float[MaxGroup];   // x - min
        float* t0 = stackalloc float[MaxGroup];
        float* t1 = stackalloc float[MaxGroup];
        float* t2 = stackalloc float[MaxGroup];
        int* lbest = stackalloc int[MaxGroup];
        int* laux = stackalloc int[MaxGroup];
        float* lauxf = stackalloc float[MaxGroup];
        var vmin = Vector256.Create(min);
        var vnmax = Vector256.Create(nmax);
        for (int i = 0; i < n; i += 8) Vector256.Store(Vector256.Load(x + i) - vmin, xm + i);

        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        {
            var vis = Vector256.Create(iscale);
            var vscale = Vector256.Create(scale);
            for (int i = 0; i < n; i += 8)
            {
                var l = Vector256.Max(Vector256<int>.Zero, Vector256.Min(vnmax, NearestIntV(vis * Vector256.Load(xm + i))));
                Vector256.Store(l, lbest + i);
                var diff = vscale * Vector256.ConvertToSingle(l) + vmin - Vector256.Load(x + i);
                diff = useMad ? Vector256.Abs(diff) : diff * diff;
                Vector256.Store(Vector256.Load(w + i) * diff, t0 + i);
            }
        }
        float bestError = 0;
        for (int i = 0; i < n; ++i) bestError += t0[i];
        if (nstep >= 1)
        {
            for (int step = 0; step <= nstep; ++step)
            {
                iscale = (rmin + rdelta * step + nmax) / (max - min);
                var vis = Vector256.Create(iscale);
                for (int i = 0; i < n; i += 8)
                {
                    var l = Vector256.Max(Vector256<int>.Zero, Vector256.Min(vnmax, NearestIntV(vis * Vector256.Load(xm + i))));
                    Vector256.Store(l, laux + i);
                    var lf = Vector256.ConvertToSingle(l);
                    Vector256.Store(lf, lauxf + i);
                    var wl = Vector256.Load(w + i) * lf;
                    Vector256.Store(wl, t0 + i);
                    Vector256.Store(wl * lf, t1 + i);
                    Vector256.Store(wl * Vector256.Load(x + i), t2 + i);
                }
                float sumL = 0, sumL2 = 0, sumXL = 0;
                for (int i = 0; i < n; ++i)
                {
                    sumL += t0[i];
                    sumL2 += t1[i];
                    sumXL += t2[i];
                }
                float D = sumW * sumL2 - sumL * sumL;
                if (D > 0)
                {
                    float thisScale = (sumW * sumXL - sumX * sumL) / D;
                    float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                    if (thisMin > 0)
                    {
                        thisMin = 0;
                        thisScale = sumXL / sumL2;
                    }
                    var vs = Vector256.Create(thisScale);
                    var vm = Vector256.Create(thisMin);
                    for (int i = 0; i < n; i += 8)
                    {
                        var diff = vs * Vector256.Load(lauxf + i) + vm - Vector256.Load(x + i);
                        diff = useMad ? Vector256.Abs(diff) : diff * diff;
                        Vector256.Store(Vector256.Load(w + i) * diff, t0 + i);
                    }
                    float curError = 0;
                    for (int i = 0; i < n; ++i) curError += t0[i];
                    if (curError < bestError)
                    {
                        for (int i = 0; i < n; i += 8) Vector256.Store(Vector256.Load(laux + i), lbest + i);
                        bestError = curError;
                        scale = thisScale;
                        min = thisMin;
                        // ggml's later candidates measure from the new min
                        vmin = Vector256.Create(min);
                        for (int i = 0; i < n; i += 8) Vector256.Store(Vector256.Load(x + i) - vmin, xm + i);
                    }
                }
            }
        }
        for (int i = 0; i < n; ++i) L[i] = (byte)lbest[i];
        theMin = -min;
        return scale;
    }

    // make_qx_quants with rmse_type 1 (weights qw, or x² when qw is null).
    private static unsafe float MakeQxVector(int n, int nmax, float* x, Span<sbyte> L, float* qw)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; ++i)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            L[..n].Clear();
            return 0f;
        }
        float* w = stackalloc float[MaxGroup];
        float* wx = stackalloc float[MaxGroup];
        float* t1 = stackalloc float[MaxGroup];
        float* t2 = stackalloc float[MaxGroup];
        int* lcur = stackalloc int[MaxGroup];
        for (int i = 0; i < n; i += 8)
        {
            var xv = Vector256.Load(x + i);
            var wv = qw != null ? Vector256.Load(qw + i) : xv * xv;
            Vector256.Store(wv, w + i);
            Vector256.Store(wv * xv, wx + i);
        }
        var lo = Vector256.Create(-nmax);
        var hi = Vector256.Create(nmax - 1);

        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        Levels(iscale);
        for (int i = 0; i < n; ++i)
        {
            L[i] = (sbyte)(lcur[i] + nmax);
            sumlx += t1[i];
            suml2 += t2[i];
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; ++step)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            Levels(iscale);
            sumlx = suml2 = 0;
            for (int i = 0; i < n; ++i)
            {
                sumlx += t1[i];
                suml2 += t2[i];
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; ++i) L[i] = (sbyte)(nmax + lcur[i]);
                scale = sumlx / suml2; best = scale * sumlx;
            }
        }
        return scale;

        // Levels l = clamp(nearest_int(iscale*x)) and the terms (w*x)*l and (w*l)*l of the two sums.
        void Levels(float s)
        {
            var vis = Vector256.Create(s);
            for (int i = 0; i < n; i += 8)
            {
                var l = Vector256.Max(lo, Vector256.Min(hi, NearestIntV(vis * Vector256.Load(x + i))));
                Vector256.Store(l, lcur + i);
                var lf = Vector256.ConvertToSingle(l);
                Vector256.Store(Vector256.Load(wx + i) * lf, t1 + i);
                Vector256.Store(Vector256.Load(w + i) * lf * lf, t2 + i);
            }
        }
    }
}
