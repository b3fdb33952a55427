using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>
/// Pieces the IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S and IQ1_M quantizers share, each as ggml-quants.c computes it
/// (float arithmetic in the reference's order; C's <c>MAX</c>/<c>MIN</c> macros, which matter for NaN).
/// Where ggml stops with <c>GGML_ASSERT</c>/<c>GGML_ABORT</c>, these throw <see cref="InvalidOperationException"/>.
/// </summary>
internal static class Iq2Quantizer
{
    public const int QK_K = 256;

    /// <summary>ggml's <c>GROUP_MAX_EPS</c>: below this a group counts as all zero.</summary>
    public const float GroupMaxEps = 1e-15f;

    /// <summary>C's <c>MAX(a, b)</c>: <c>a &gt; b ? a : b</c> (NaN in <paramref name="a"/> loses, in <paramref name="b"/> wins).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(float a, float b) => a > b ? a : b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Clamp(int l, int hi) => Math.Max(0, Math.Min(hi, l));

    /// <summary>
    /// ggml's <c>make_qp_quants</c>: non-negative levels 0..<paramref name="nmax"/> for non-negative
    /// <paramref name="x"/> with a weighted least-squares scale (the scale is returned). <paramref name="L"/> is
    /// ggml's <c>uint8_t</c> array, so the first unclamped pass wraps like a C store to <c>uint8_t</c>.
    /// </summary>
    public static float MakeQpQuants(int n, int nmax, ReadOnlySpan<float> x, Span<byte> L, ReadOnlySpan<float> quantWeights)
    {
        float max = 0;
        for (int i = 0; i < n; i++) max = Max(max, x[i]);
        if (max < GroupMaxEps)
        {
            L[..n].Clear();
            return 0f;
        }
        float iscale = nmax / max;
        for (int i = 0; i < n; i++) L[i] = (byte)GgmlRounding.NearestInt(iscale * x[i]);
        float scale = 1 / iscale;
        float bestMse = 0;
        for (int i = 0; i < n; i++)
        {
            float diff = x[i] - scale * L[i];
            float w = quantWeights[i];
            bestMse += w * diff * diff;
        }
        for (int @is = -4; @is <= 4; @is++)
        {
            if (@is == 0) continue;
            float iscaleIs = (0.1f * @is + nmax) / max;
            float scaleIs = 1 / iscaleIs;
            float mse = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Min(nmax, GgmlRounding.NearestInt(iscaleIs * x[i]));
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
        for (int i = 0; i < n; i++)
        {
            int l = Math.Min(nmax, GgmlRounding.NearestInt(iscale * x[i]));
            L[i] = (byte)l;
            float w = quantWeights[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; itry++)
        {
            int nChanged = 0;
            for (int i = 0; i < n; i++)
            {
                float w = quantWeights[i];
                float slx = sumlx - w * x[i] * L[i];
                float sl2 = suml2 - w * L[i] * L[i];
                if (slx > 0 && sl2 > 0)
                {
                    int newL = Math.Min(nmax, GgmlRounding.NearestInt(x[i] * sl2 / slx));
                    if (newL != L[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = (byte)newL; sumlx = slx; suml2 = sl2;
                            nChanged++;
                        }
                    }
                }
            }
            if (nChanged == 0) break;
        }
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }

    /// <summary>
    /// ggml's <c>iq2_find_best_neighbour</c>: among the neighbours of the off-grid <paramref name="code"/>, the grid
    /// point closest to <paramref name="xval"/> / <paramref name="scale"/> in weighted squared distance (first wins
    /// ties); its levels go to <paramref name="L"/>.
    /// </summary>
    public static int FindBestNeighbour(Iq2Search t, int code, ReadOnlySpan<float> xval, ReadOnlySpan<float> weight, float scale, Span<sbyte> L)
    {
        int off = t.NeighbourOffset(code);
        var nb = t.Neighbours;
        var gv = t.GridValues;
        int num = nb[off];
        if (num >= 8 && Simd.Level >= SimdLevel.Avx2) return FindBestNeighbourAvx2(t, code, off, num, xval, weight, scale, L);
        float bestD2 = float.MaxValue;
        int gridIndex = -1;
        float x0 = xval[0], x1 = xval[1], x2 = xval[2], x3 = xval[3], x4 = xval[4], x5 = xval[5], x6 = xval[6], x7 = xval[7];
        float w0 = weight[0], w1 = weight[1], w2 = weight[2], w3 = weight[3], w4 = weight[4], w5 = weight[5], w6 = weight[6], w7 = weight[7];
        for (int j = 1; j <= num; j++)
        {
            int g = nb[off + j];
            ref float pg = ref gv[8 * g];
            float d2 = 0, diff;
            diff = scale * pg - x0; d2 += w0 * diff * diff;
            diff = scale * Unsafe.Add(ref pg, 1) - x1; d2 += w1 * diff * diff;
            diff = scale * Unsafe.Add(ref pg, 2) - x2; d2 += w2 * diff * diff;
            diff = scale * Unsafe.Add(ref pg, 3) - x3; d2 += w3 * diff * diff;
            diff = scale * Unsafe.Add(ref pg, 4) - x4; d2 += w4 * diff * diff;
            diff = scale * Unsafe.Add(ref pg, 5) - x5; d2 += w5 * diff * diff;
            diff = scale * Unsafe.Add(ref pg, 6) - x6; d2 += w6 * diff * diff;
            diff = scale * Unsafe.Add(ref pg, 7) - x7; d2 += w7 * diff * diff;
            if (d2 < bestD2)
            {
                bestD2 = d2; gridIndex = g;
            }
        }
        if (gridIndex < 0) throw new InvalidOperationException("no grid neighbour at a finite distance (ggml aborts here: GGML_ASSERT(grid_index >= 0)); the values are too large for this type");
        for (int i = 0; i < 8; i++) L[i] = t.Levels[8 * gridIndex + i];
        return gridIndex;
    }

    /// <summary>
    /// <see cref="FindBestNeighbour"/> with eight neighbours per vector: each lane computes one neighbour's distance
    /// with the scalar loop's multiplications and additions in the same order (no fused multiply-add), so the
    /// distances, and the first smallest among them, are bitwise the same.
    /// </summary>
    private static unsafe int FindBestNeighbourAvx2(Iq2Search t, int code, int off, int num, ReadOnlySpan<float> xval, ReadOnlySpan<float> weight, float scale, Span<sbyte> L)
    {
        var nb = t.Neighbours;
        Span<float> d2s = stackalloc float[num + 7];
        var sv = Vector256.Create(scale);
        fixed (byte* soa = &t.NeighbourBytes[t.SoaStart[code]])
        {
            for (int j0 = 0; j0 < num; j0 += 8)
            {
                byte* blk = soa + 8 * j0;
                var d2 = Vector256<float>.Zero;
                for (int i = 0; i < 8; i++)
                {
                    var q = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(blk + 8 * i));
                    var diff = sv * q - Vector256.Create(xval[i]);
                    d2 += Vector256.Create(weight[i]) * diff * diff;
                }
                d2.CopyTo(d2s.Slice(j0));
            }
        }
        float bestD2 = float.MaxValue;
        int gridIndex = -1;
        for (int j = 0; j < num; j++)
        {
            if (d2s[j] < bestD2)
            {
                bestD2 = d2s[j]; gridIndex = nb[off + 1 + j];
            }
        }
        if (gridIndex < 0) throw new InvalidOperationException("no grid neighbour at a finite distance (ggml aborts here: GGML_ASSERT(grid_index >= 0)); the values are too large for this type");
        for (int i = 0; i < 8; i++) L[i] = t.Levels[8 * gridIndex + i];
        return gridIndex;
    }

    /// <summary>
    /// ggml's <c>iq1_find_best_neighbour2</c>: like <see cref="FindBestNeighbour"/> with the three shifted values
    /// <paramref name="xg"/> in place of the grid's levels.
    /// </summary>
    /// <remarks>
    /// When no neighbour is at a finite distance, ggml falls back to a scan of the whole grid that reads past the
    /// 8 values it was given (it indexes them by grid index); that read cannot be reproduced, so this throws.
    /// </remarks>
    public static int FindBestNeighbour2(Iq2Search t, int code, ReadOnlySpan<float> xval, ReadOnlySpan<float> weight, float scale, ReadOnlySpan<float> xg, Span<sbyte> L)
    {
        int off = t.NeighbourOffset(code);
        var nb = t.Neighbours;
        var lv = t.Levels;
        int num = nb[off];
        if (num >= 8 && Simd.Level >= SimdLevel.Avx2) return FindBestNeighbour2Avx2(t, code, off, num, xval, weight, scale, xg, L);
        float bestScore = float.MaxValue;
        int gridIndex = -1;
        for (int j = 1; j <= num; j++)
        {
            int g = nb[off + j];
            float d2 = 0;
            for (int i = 0; i < 8; i++)
            {
                float q = xg[lv[8 * g + i]];
                float w = weight[i];
                float diff = scale * q - xval[i];
                d2 += w * diff * diff;
            }
            if (d2 < bestScore)
            {
                bestScore = d2;
                gridIndex = g;
            }
        }
        if (gridIndex < 0) throw new InvalidOperationException("no grid neighbour at a finite distance (ggml falls back to an out-of-bounds scan here and usually aborts); the values are too large for this type");
        for (int i = 0; i < 8; i++) L[i] = lv[8 * gridIndex + i];
        return gridIndex;
    }

    /// <summary>
    /// <see cref="FindBestNeighbour2"/> with eight neighbours per vector, bitwise as the scalar loop (see
    /// <see cref="FindBestNeighbourAvx2"/>); a grid value 2l+1 selects <c>xg[l]</c> by comparison.
    /// </summary>
    private static unsafe int FindBestNeighbour2Avx2(Iq2Search t, int code, int off, int num, ReadOnlySpan<float> xval, ReadOnlySpan<float> weight, float scale, ReadOnlySpan<float> xg, Span<sbyte> L)
    {
        var nb = t.Neighbours;
        Span<float> d2s = stackalloc float[num + 7];
        var sv = Vector256.Create(scale);
        var one = Vector256.Create(1f);
        var three = Vector256.Create(3f);
        var xg0 = Vector256.Create(xg[0]);
        var xg1 = Vector256.Create(xg[1]);
        var xg2 = Vector256.Create(xg[2]);
        fixed (byte* soa = &t.NeighbourBytes[t.SoaStart[code]])
        {
            for (int j0 = 0; j0 < num; j0 += 8)
            {
                byte* blk = soa + 8 * j0;
                var d2 = Vector256<float>.Zero;
                for (int i = 0; i < 8; i++)
                {
                    var v = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(blk + 8 * i));
                    var q = Vector256.ConditionalSelect(Vector256.Equals(v, one), xg0, Vector256.ConditionalSelect(Vector256.Equals(v, three), xg1, xg2));
                    var diff = sv * q - Vector256.Create(xval[i]);
                    d2 += Vector256.Create(weight[i]) * diff * diff;
                }
                d2.CopyTo(d2s.Slice(j0));
            }
        }
        float bestScore = float.MaxValue;
        int gridIndex = -1;
        for (int j = 0; j < num; j++)
        {
            if (d2s[j] < bestScore)
            {
                bestScore = d2s[j]; gridIndex = nb[off + 1 + j];
            }
        }
        if (gridIndex < 0) throw new InvalidOperationException("no grid neighbour at a finite distance (ggml falls back to an out-of-bounds scan here and usually aborts); the values are too large for this type");
        for (int i = 0; i < 8; i++) L[i] = t.Levels[8 * gridIndex + i];
        return gridIndex;
    }

    /// <summary>
    /// Sorts <paramref name="n"/> values ascending with their original positions in <paramref name="idx"/>, stably
    /// (ggml calls glibc's <c>qsort</c>, a merge sort for arrays this small, so equal values keep their order).
    /// </summary>
    public static void StableSortWithIndex(ReadOnlySpan<float> x, int n, Span<float> sorted, Span<int> idx)
    {
        for (int j = 0; j < n; j++)
        {
            float v = x[j];
            int k = j;
            while (k > 0 && sorted[k - 1] > v)
            {
                sorted[k] = sorted[k - 1];
                idx[k] = idx[k - 1];
                k--;
            }
            sorted[k] = v;
            idx[k] = j;
        }
    }

    /// <summary>Throws unless <paramref name="scale"/> &gt;= 0, as ggml's <c>GGML_ASSERT(scale &gt;= 0)</c> does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AssertScale(float scale)
    {
        if (!(scale >= 0)) throw new InvalidOperationException($"sub-block scale {scale} is not >= 0 (ggml aborts here); the values are too large or not finite");
    }

    /// <summary>The grid index of <paramref name="code"/>, which must be on the grid (ggml aborts with "Oops: found point not on grid").</summary>
    public static int OnGrid(Iq2Search t, int code)
    {
        int g = (uint)code < Iq2Search.KMapSize ? t.Map[code] : -1;
        if (g < 0) throw new InvalidOperationException($"point {code} is not on the grid (ggml aborts here)");
        return g;
    }
}
