using System.Runtime.CompilerServices;
using static Squeeze.Numerics.GgmlRounding;

namespace Squeeze.Quants;

/// <summary>
/// The weighted scale (and min) searches that ggml-quants.c shares between block formats, under ggml's names:
/// <c>make_qx_quants</c>, <c>make_q3_quants</c>, <c>make_qkx2_quants</c>, <c>make_qkx3_quants</c>, <c>make_qp_quants</c>.
/// Each picks, for a group of values, a scale (and for the asymmetric ones a min) and the integer levels
/// <c>L</c> that minimise a weighted squared (or absolute) error, by trying a few candidate scales around
/// the obvious one and keeping the best weighted least-squares fit.
/// </summary>
/// <remarks>
/// Bit-exactness: every sum is a scalar float accumulated in element order, products are evaluated left to
/// right as the C source writes them (no fused multiply-add), and every store into a level array goes
/// through the same integer width as ggml's (<c>int8_t</c> or <c>uint8_t</c>), because later arithmetic
/// reads the stored value back. Changing any of this changes bytes on some input.
/// </remarks>
internal static partial class ScaleSearch
{
    /// <summary>ggml's <c>GROUP_MAX_EPS</c>: groups whose largest magnitude is below this quantize to zero.</summary>
    public const float GroupMaxEps = 1e-15f;

    /// <summary>
    /// ggml's <c>make_qx_quants</c>: symmetric levels <c>L[i] - nmax</c> in [-nmax, nmax-1] with a signed scale.
    /// The sign of the scale follows the value of largest magnitude so that it maps to -nmax (one more level
    /// on that side). <paramref name="rmseType"/> 0 returns the plain scale; 1 weights by <paramref name="qw"/>
    /// (or x² when empty) and tries 18 nearby scales; a negative type returns early after the first fit.
    /// Returns the scale; <paramref name="L"/> receives levels offset by +nmax.
    /// </summary>
    public static unsafe float MakeQxQuants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L, int rmseType, ReadOnlySpan<float> qw)
    {
        x = x[..n]; L = L[..n];
        bool hasWeights = !qw.IsEmpty;
        if (hasWeights) qw = qw[..n];
        if (rmseType == 1 && n % 8 == 0 && n <= MaxGroup && UseVectors)
        {
            fixed (float* px = x)
            fixed (float* pw = qw)
                return MakeQxVector(n, nmax, px, L, hasWeights ? pw : null);
        }
        float max = 0, amax = 0;
        for (int i = 0; i < x.Length; ++i)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            L.Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        if (rmseType == 0)
        {
            for (int i = 0; i < x.Length; ++i)
            {
                int l = NearestInt(iscale * x[i]);
                L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
            }
            return 1 / iscale;
        }
        bool returnEarly = false;
        if (rmseType < 0) { rmseType = -rmseType; returnEarly = true; }
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < x.Length; ++i)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
            float w = hasWeights ? qw[i] : RmseWeight(rmseType, x[i]);
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        if (returnEarly) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; ++step)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < x.Length; ++i)
            {
                int l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                float w = hasWeights ? qw[i] : RmseWeight(rmseType, x[i]);
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < x.Length; ++i)
                {
                    int l = NearestInt(iscale * x[i]);
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
                }
                scale = sumlx / suml2; best = scale * sumlx;
            }
        }
        return scale;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RmseWeight(int rmseType, float x) => rmseType switch
    {
        1 => x * x,
        2 => 1,
        3 => MathF.Abs(x),
        _ => MathF.Sqrt(MathF.Abs(x)),
    };

    /// <summary>
    /// ggml's <c>make_q3_quants</c>: symmetric levels in [-nmax, nmax-1] (stored +nmax). With
    /// <paramref name="doRmse"/>, weights are x² and up to five passes move single levels while that improves
    /// the weighted fit (coordinate descent); otherwise the plain scale from the largest value.
    /// </summary>
    public static unsafe float MakeQ3Quants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L, bool doRmse)
    {
        x = x[..n]; L = L[..n];
        float max = 0, amax = 0;
        for (int i = 0; i < x.Length; ++i)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            L.Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        if (doRmse)
        {
            // Coordinate descent, one level at a time: inherently sequential. The weights x² and products x²·x
            // are the same float operations ggml evaluates inline, hoisted out of the passes.
            float* w = stackalloc float[n];
            float* wx = stackalloc float[n];
            int* Li = stackalloc int[n];
            float sumlx = 0, suml2 = 0;
            fixed (float* px = x)
            {
                for (int i = 0; i < n; ++i)
                {
                    float xi = px[i];
                    int l = NearestInt(iscale * xi);
                    l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                    Li[i] = l;
                    float wi = xi * xi;
                    w[i] = wi;
                    wx[i] = wi * xi;
                    sumlx += wx[i] * l;
                    suml2 += wi * l * l;
                }
                for (int itry = 0; itry < 5; ++itry)
                {
                    int nChanged = 0;
                    for (int i = 0; i < n; ++i)
                    {
                        float wi = w[i];
                        int li = Li[i];
                        float slx = sumlx - wx[i] * li;
                        if (slx > 0)
                        {
                            float sl2 = suml2 - wi * li * li;
                            int newL = NearestInt(px[i] * sl2 / slx);
                            newL = Math.Max(-nmax, Math.Min(nmax - 1, newL));
                            if (newL != li)
                            {
                                slx += wx[i] * newL;
                                sl2 += wi * newL * newL;
                                if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2)
                                {
                                    Li[i] = newL; sumlx = slx; suml2 = sl2;
                                    ++nChanged;
                                }
                            }
                        }
                    }
                    if (nChanged == 0) break;
                }
            }
            for (int i = 0; i < n; ++i) L[i] = (sbyte)(Li[i] + nmax);
            return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
        }
        for (int i = 0; i < x.Length; ++i)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
        }
        return 1 / iscale;
    }

    /// <summary>
    /// ggml's <c>make_qkx2_quants</c>: asymmetric levels in [0, nmax] with a scale and a non-positive min,
    /// searched over <c>nstep + 1</c> candidate scales <c>(rmin + rdelta*is + nmax) / (max - min)</c>, each
    /// refined by a weighted least-squares fit of scale and min; the error is squared, or absolute with
    /// <paramref name="useMad"/>. Returns the scale; <paramref name="theMin"/> receives <c>-min</c> (&gt;= 0).
    /// <paramref name="Laux"/> is scratch of at least <paramref name="n"/> bytes.
    /// </summary>
    public static unsafe float MakeQkx2Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights,
        Span<byte> L, out float theMin, Span<byte> Laux, float rmin, float rdelta, int nstep, bool useMad)
    {
        x = x[..n]; weights = weights[..n]; L = L[..n]; Laux = Laux[..n];
        if (n % 8 == 0 && n <= MaxGroup && UseVectors)
        {
            fixed (float* px = x)
            fixed (float* pw = weights)
                return MakeQkxVector(n, nmax, px, pw, L, out theMin, Laux, rmin, rdelta, nstep, useMad, degenerateWhenLess: false);
        }
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < x.Length; ++i)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            L.Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < x.Length; ++i)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; ++step)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < x.Length; ++i)
            {
                int l = NearestInt(iscale * (x[i] - min));
                l = Math.Max(0, Math.Min(nmax, l));
                Laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
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
                float curError = 0;
                for (int i = 0; i < x.Length; ++i)
                {
                    float diff = thisScale * Laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError)
                {
                    Laux.CopyTo(L);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>
    /// ggml's <c>make_qkx3_quants</c>: as <see cref="MakeQkx2Quants"/>, but weights default to x² when
    /// <paramref name="weights"/> is empty, and a constant group (<c>max &lt;= min</c>) quantizes to zero.
    /// </summary>
    public static unsafe float MakeQkx3Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights,
        Span<byte> L, out float theMin, Span<byte> Laux, float rmin, float rdelta, int nstep, bool useMad)
    {
        x = x[..n]; L = L[..n]; Laux = Laux[..n];
        bool hasWeights = !weights.IsEmpty;
        if (hasWeights) weights = weights[..n];
        if (n % 8 == 0 && n <= MaxGroup && UseVectors)
        {
            float* w2 = stackalloc float[MaxGroup];
            fixed (float* px = x)
            fixed (float* pw = weights)
            {
                if (!hasWeights) for (int i = 0; i < n; ++i) w2[i] = px[i] * px[i];
                return MakeQkxVector(n, nmax, px, hasWeights ? pw : w2, L, out theMin, Laux, rmin, rdelta, nstep, useMad, degenerateWhenLess: true);
            }
        }
        float min = x[0], max = x[0];
        float sumW = hasWeights ? weights[0] : x[0] * x[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < x.Length; ++i)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = hasWeights ? weights[i] : x[i] * x[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max <= min)
        {
            L.Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestMad = 0;
        for (int i = 0; i < x.Length; ++i)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            float w = hasWeights ? weights[i] : x[i] * x[i];
            bestMad += w * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; ++step)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < x.Length; ++i)
            {
                int l = NearestInt(iscale * (x[i] - min));
                l = Math.Max(0, Math.Min(nmax, l));
                Laux[i] = (byte)l;
                float w = hasWeights ? weights[i] : x[i] * x[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
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
                float mad = 0;
                for (int i = 0; i < x.Length; ++i)
                {
                    float diff = thisScale * Laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    float w = hasWeights ? weights[i] : x[i] * x[i];
                    mad += w * diff;
                }
                if (mad < bestMad)
                {
                    Laux.CopyTo(L);
                    bestMad = mad;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>
    /// ggml's <c>make_qp_quants</c>: non-negative levels in [0, nmax] for non-negative values (the sub-block
    /// scales and mins of k-quants), weighted by <paramref name="quantWeights"/>: tries 8 scales around
    /// <c>nmax / max</c>, then up to five coordinate-descent passes. Returns the scale.
    /// </summary>
    public static float MakeQpQuants(int n, int nmax, ReadOnlySpan<float> x, Span<byte> L, ReadOnlySpan<float> quantWeights)
    {
        x = x[..n]; L = L[..n]; quantWeights = quantWeights[..n];
        float max = 0;
        for (int i = 0; i < x.Length; ++i) max = max > x[i] ? max : x[i]; // C's MAX(max, x[i])
        if (max < GroupMaxEps)
        {
            L.Clear();
            return 0f;
        }
        float iscale = nmax / max;
        for (int i = 0; i < x.Length; ++i) L[i] = (byte)NearestInt(iscale * x[i]);
        float scale = 1 / iscale;
        float bestMse = 0;
        for (int i = 0; i < x.Length; ++i)
        {
            float diff = x[i] - scale * L[i];
            float w = quantWeights[i];
            bestMse += w * diff * diff;
        }
        for (int step = -4; step <= 4; ++step)
        {
            if (step == 0) continue;
            float iscaleIs = (0.1f * step + nmax) / max;
            float scaleIs = 1 / iscaleIs;
            float mse = 0;
            for (int i = 0; i < x.Length; ++i)
            {
                int l = NearestInt(iscaleIs * x[i]);
                l = Math.Min(nmax, l);
                float diff = x[i] - scaleIs * l;
                float w = quantWeights[i];
                mse += w * diff * diff;
            }
            if (mse < bestMse)
            {
                bestMse = mse;
                iscale = iscaleIs;
            }
        }
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < x.Length; ++i)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Min(nmax, l);
            L[i] = (byte)l;
            float w = quantWeights[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; ++itry)
        {
            int nChanged = 0;
            for (int i = 0; i < x.Length; ++i)
            {
                float w = quantWeights[i];
                float slx = sumlx - w * x[i] * L[i];
                float sl2 = suml2 - w * L[i] * L[i];
                if (slx > 0 && sl2 > 0)
                {
                    int newL = NearestInt(x[i] * sl2 / slx);
                    newL = Math.Min(nmax, newL);
                    if (newL != L[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = (byte)newL; sumlx = slx; suml2 = sl2;
                            ++nChanged;
                        }
                    }
                }
            }
            if (nChanged == 0) break;
        }
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }
}
