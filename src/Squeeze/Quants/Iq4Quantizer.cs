using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>
/// The quantizer IQ4_NL and IQ4_XS share (ggml's <c>quantize_row_iq4_nl_impl</c> with <c>ntry = 7</c>): per
/// 32-weight block a weighted least-squares scale over the non-linear levels, tried at 15 starting scales; IQ4_XS
/// then stores the block scales as 6-bit multiples of one fp16 super-block scale. Float order follows ggml.
/// </summary>
internal static partial class Iq4Quantizer
{
    private const int NTry = 7;

    /// <summary>ggml's <c>best_index_int8</c> over <see cref="Iq4Values.KValues"/>: the nearest level, ties to the upper one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int BestIndex(ReadOnlySpan<sbyte> val, float x)
    {
        if (x <= val[0]) return 0;
        if (x >= val[15]) return 15;
        int ml = 0, mu = 15;
        while (mu - ml > 1)
        {
            int mav = (ml + mu) / 2;
            if (x < val[mav]) mu = mav; else ml = mav;
        }
        return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
    }

    /// <summary>
    /// The scale of one 32-weight block (ggml's first loop of <c>quantize_row_iq4_nl_impl</c>); 0 when the block's
    /// max is below 1e-15. The levels ggml picks in this loop are always recomputed afterwards, so they are not kept.
    /// </summary>
    public static float BlockScale(ReadOnlySpan<float> xb, ReadOnlySpan<float> weight)
    {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
        {
            float ax = MathF.Abs(xb[j]);
            if (ax > amax)
            {
                amax = ax; max = xb[j];
            }
        }
        if (amax < 1e-15f) return 0;
        if (Simd.Level >= SimdLevel.Avx512 && Avx512F.IsSupported) return BlockScaleAvx512(xb, weight, max);
        if (Simd.Level >= SimdLevel.Avx2 && Avx2.IsSupported) return BlockScaleAvx2(xb, weight, max);
        return BlockScaleScalar(xb, weight, max);
    }

    private static float BlockScaleScalar(ReadOnlySpan<float> xb, ReadOnlySpan<float> weight, float max)
    {
        var values = Iq4Values.KValues;
        float d = -max / values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; j++)
        {
            float al = id * xb[j];
            int l = BestIndex(values, al);
            float q = values[l];
            float w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0f;
        float best = d * sumqx;
        for (int itry = -NTry; itry <= NTry; itry++)
        {
            id = (itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; j++)
            {
                float al = id * xb[j];
                int l = BestIndex(values, al);
                float q = values[l];
                float w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
            {
                d = sumqx / sumq2; best = d * sumqx;
            }
        }
        return d;
    }

    /// <summary>The importance-free weights (x²) or the imatrix-based ones (qw·√(σ² + x²)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Weights(ReadOnlySpan<float> xb, ReadOnlySpan<float> qw, float sigma2, Span<float> weight)
    {
        if (!qw.IsEmpty)
            for (int j = 0; j < 32; j++) weight[j] = qw[j] * MathF.Sqrt(sigma2 + xb[j] * xb[j]);
        else
            for (int j = 0; j < 32; j++) weight[j] = xb[j] * xb[j];
    }

    /// <summary>Packs 32 levels per block into 16 bytes: element j in the low nibble, element j+16 in the high one.</summary>
    public static void Pack(ReadOnlySpan<byte> L, Span<byte> q4)
    {
        for (int i = 0; i < L.Length / 32; i++)
            for (int j = 0; j < 16; j++)
                q4[16 * i + j] = (byte)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
    }

    /// <summary>ggml's sum of squares scaled by 2/n (σ² of the importance weights).</summary>
    public static float Sigma2(ReadOnlySpan<float> x)
    {
        float sigma2 = 0;
        for (int j = 0; j < x.Length; j++) sigma2 += x[j] * x[j];
        sigma2 *= 2f / x.Length;
        return sigma2;
    }

    /// <summary>Rounds to the nearest level index at inverse scale <paramref name="id"/>.</summary>
    public static void Levels(ReadOnlySpan<float> x, float id, Span<byte> L)
    {
        if (Simd.Level >= SimdLevel.Avx512 && Avx512F.IsSupported && x.Length % 16 == 0)
        {
            LevelsAvx512(x, id, L);
            return;
        }
        if (Simd.Level >= SimdLevel.Avx2 && Avx2.IsSupported && x.Length % 8 == 0)
        {
            LevelsAvx2(x, id, L);
            return;
        }
        var values = Iq4Values.KValues;
        for (int j = 0; j < x.Length; j++) L[j] = (byte)BestIndex(values, id * x[j]);
    }
}
