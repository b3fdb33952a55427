using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>
/// The sub-block search IQ3_XXS and IQ3_S share (ggml's <c>quantize_row_iq3_xxs_impl</c> and
/// <c>quantize_row_iq3_s_impl</c> with 32-element sub-blocks): signs split off, then a scan over trial scales
/// where each group of four magnitudes is rounded to 3-bit levels and snapped to the grid, then a refit of the
/// groups that were off the grid. Float operations and their order follow ggml exactly.
/// </summary>
internal static partial class Iq3Quantizer
{
    private const int kMaxQ = 8;

    /// <summary>
    /// Quantizes one 32-element sub-block. IQ3_XXS (<paramref name="xxs"/>) stores 7 sign bits per 8 values and
    /// makes the count of negatives even by flipping the least important one; IQ3_S stores all 8.
    /// Returns the sub-block scale (0 when the sub-block is skipped, <paramref name="skipped"/> set) and fills
    /// <paramref name="gridIndex"/> (8 grid indices) and <paramref name="signs"/> (4 bytes).
    /// </summary>
    [SkipLocalsInit]
    public static float QuantizeSubBlock(Iq3Search t, bool xxs, ReadOnlySpan<float> xb, ReadOnlySpan<float> weight,
        Span<int> gridIndex, Span<byte> signs, out bool skipped)
    {
        Span<float> waux = stackalloc float[32];
        Span<float> xval = stackalloc float[32];
        Span<sbyte> L = stackalloc sbyte[32];
        Span<bool> isOnGrid = stackalloc bool[8];
        var map = t.Map;
        var points = t.Points;
        bool simd = Simd.Level >= SimdLevel.Avx2 && Avx2.IsSupported;

        Span<int> negatives = stackalloc int[4];
        if (simd) SplitSignsAvx2(xb, weight, xval, waux, negatives);
        else
        {
            for (int i = 0; i < 32; i++) waux[i] = MathF.Sqrt(weight[i]);
            for (int k = 0; k < 4; k++)
            {
                int bits = 0;
                for (int i = 0; i < 8; i++)
                {
                    float v = xb[8 * k + i];
                    if (v >= 0) xval[8 * k + i] = v;
                    else
                    {
                        xval[8 * k + i] = -v; bits |= 1 << i;
                    }
                }
                negatives[k] = bits;
            }
        }
        for (int k = 0; k < 4; k++)
        {
            int s = negatives[k];
            int nflip = System.Numerics.BitOperations.PopCount((uint)s);
            if (xxs)
            {
                if ((nflip & 1) != 0)
                {
                    // An odd count of negatives cannot be stored in 7 bits: give up the sign of the value that costs least.
                    int imin = 0;
                    float min = weight[8 * k] * xb[8 * k] * xb[8 * k];
                    for (int i = 1; i < 8; i++)
                    {
                        float ax = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                        if (ax < min)
                        {
                            min = ax; imin = i;
                        }
                    }
                    xval[8 * k + imin] = -xval[8 * k + imin];
                    s ^= 1 << imin;
                }
                signs[k] = (byte)(s & 127);
            }
            else
            {
                signs[k] = (byte)s;
            }
        }

        float max = xval[0];
        for (int i = 1; i < 32; i++) max = max > xval[i] ? max : xval[i];
        if (xxs ? max < 1e-8f : max == 0)
        {
            skipped = true;
            gridIndex.Clear();
            return 0;
        }
        skipped = false;
        L.Clear();

        float scale = max / (2 * kMaxQ - 1);
        isOnGrid.Fill(xxs);
        if (simd)
            scale = ScanAvx2(t, xxs, max, xval, weight, waux, L, isOnGrid, scale);
        else
            scale = ScanScalar(t, xxs, max, xval, weight, waux, L, isOnGrid, scale);

        int notOnGrid = 0;
        for (int k = 0; k < 8; k++) if (!isOnGrid[k]) notOnGrid++;
        if (notOnGrid > 0 && scale > 0)
        {
            float id = 1 / scale;
            for (int k = 0; k < 8; k++)
            {
                // IQ3_XXS refits only the groups that were off the grid; IQ3_S refits all of them.
                if (xxs && isOnGrid[k]) continue;
                int u = 0;
                for (int i = 0; i < 4; i++)
                {
                    int l = GgmlRounding.NearestInt(0.5f * (id * xval[4 * k + i] - 1));
                    l = Math.Max(0, Math.Min(kMaxQ - 1, l));
                    u |= l << 3 * i;
                }
                int g = map[u];
                if (g < 0)
                    g = simd ? BestNeighbourAvx2(t, u, xval.Slice(4 * k, 4), waux.Slice(4 * k, 4), scale)
                             : t.FindBestNeighbour(-g - 1, xval.Slice(4 * k, 4), waux.Slice(4 * k, 4), scale, L.Slice(4 * k, 4));
                for (int i = 0; i < 4; i++) L[4 * k + i] = (sbyte)((points[4 * g + i] - 1) / 2);
            }
            float sumqx = 0, sumq2 = 0;
            for (int i = 0; i < 32; i++)
            {
                float w = weight[i];
                float q = 2 * L[i] + 1;
                sumqx += w * xval[i] * q;
                sumq2 += w * q * q;
            }
            if (sumq2 > 0) scale = sumqx / sumq2;
        }
        if (scale < 0)
        {
            // Only reachable through the sign flip of IQ3_XXS; a negative scale cannot be stored, so flip the signs.
            scale = -scale;
            for (int k = 0; k < 4; k++) signs[k] = xxs ? (byte)(~signs[k] & 127) : (byte)~signs[k];
        }
        for (int k = 0; k < 8; k++)
        {
            int u = 0;
            for (int i = 0; i < 4; i++) u |= L[4 * k + i] << 3 * i;
            int g = map[u];
            if (g < 0) throw new InvalidOperationException($"IQ3 quantizer: point {u} is not on the grid (ggml aborts here too)");
            gridIndex[k] = g;
        }
        if (!(scale >= 0)) throw new InvalidOperationException("IQ3 quantizer: negative or NaN sub-block scale (ggml aborts here too)");
        return scale;
    }

    /// <summary>
    /// The reference scan over trial scales: for each, the levels of every group (snapped to the grid) and the
    /// weighted least-squares scale; the best trial so far wins when its error is strictly lower.
    /// Updates <paramref name="L"/> and <paramref name="isOnGrid"/> to the winner's and returns its scale.
    /// </summary>
    private static float ScanScalar(Iq3Search t, bool xxs, float max, ReadOnlySpan<float> xval, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> waux, Span<sbyte> L, Span<bool> isOnGrid, float scale)
    {
        Span<sbyte> Laux = stackalloc sbyte[32];
        Span<bool> isOnGridAux = stackalloc bool[8];
        var map = t.Map;
        float best = 0;
        int nsteps = xxs ? 15 : 9;
        for (int step = -nsteps; step <= nsteps; step++)
        {
            float id = (2 * kMaxQ - 1 + step * 0.2f) / max;
            float thisScale = 1 / id;
            for (int k = 0; k < 8; k++)
            {
                int u = 0;
                for (int i = 0; i < 4; i++)
                {
                    int l = GgmlRounding.NearestInt(0.5f * (id * xval[4 * k + i] - 1));
                    l = Math.Max(0, Math.Min(kMaxQ - 1, l));
                    Laux[4 * k + i] = (sbyte)l;
                    u |= l << 3 * i;
                }
                int g = map[u];
                isOnGridAux[k] = true;
                if (g < 0)
                {
                    isOnGridAux[k] = false;
                    t.FindBestNeighbour(-g - 1, xval.Slice(4 * k, 4), waux.Slice(4 * k, 4), thisScale, Laux.Slice(4 * k, 4));
                }
            }
            float sumqx = 0, sumq2 = 0;
            for (int i = 0; i < 32; i++)
            {
                float w = weight[i];
                float q = 2 * Laux[i] + 1;
                sumqx += w * xval[i] * q;
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
            {
                scale = sumqx / sumq2; best = scale * sumqx;
                Laux.CopyTo(L);
                isOnGridAux.CopyTo(isOnGrid);
            }
        }
        return scale;
    }
}
