using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

internal static partial class Iq4Quantizer
{
    /// <summary>
    /// For t = floor(x) in [-128, 127], at [t + 128]: how many of the levels 1..14 are &lt;= t, which for x in
    /// [t, t+1) is the lower bracket index <c>ml</c> that <see cref="BestIndex"/>'s binary search ends with
    /// (the levels are integers).
    /// </summary>
    private static readonly int[] Brackets = BuildBrackets();

    private static int[] BuildBrackets()
    {
        var values = Iq4Values.KValues;
        var table = new int[256];
        for (int t = -128; t < 128; t++)
        {
            int n = 0;
            for (int k = 1; k <= 14; k++) if (values[k] <= t) n++;
            table[t + 128] = n;
        }
        return table;
    }

    private static readonly float[] LevelFloats = BuildLevelFloats();

    private static float[] BuildLevelFloats()
    {
        var f = new float[16];
        for (int i = 0; i < 16; i++) f[i] = Iq4Values.KValues[i];
        return f;
    }

    /// <summary>
    /// <see cref="BestIndex"/> for eight values at once, with the same result for every input (NaN and values at or
    /// above the top level give 15, like the binary search): the bracket from a table by floor(x), then ggml's
    /// exact tie test <c>x - lower &lt; upper - x</c>. Returns the level; <paramref name="index"/> gets its index.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<float> NearestLevel(Vector256<float> x, int* brackets, Vector256<float> lo, Vector256<float> hi,
        out Vector256<int> index)
    {
        var t = Avx.ConvertToVector256Int32WithTruncation(Avx.RoundToNegativeInfinity(x));
        t = Vector256.Min(Vector256.Max(t, Vector256.Create(-128)), Vector256.Create(127)) + Vector256.Create(128);
        var ml = Avx2.GatherVector256(brackets, t, 4);
        // !(x < 113): the top level, +Inf, NaN and values too large for the integer conversion.
        var top = ~Vector256.LessThan(x, Vector256.Create(113f)).AsInt32();
        ml = Vector256.ConditionalSelect(top, Vector256.Create(14), ml);
        var mu = ml + Vector256<int>.One;
        var seven = Vector256.Create(7);
        var lower = Vector256.ConditionalSelect(Vector256.GreaterThan(ml, seven).AsSingle(), Avx2.PermuteVar8x32(hi, ml), Avx2.PermuteVar8x32(lo, ml));
        var upper = Vector256.ConditionalSelect(Vector256.GreaterThan(mu, seven).AsSingle(), Avx2.PermuteVar8x32(hi, mu), Avx2.PermuteVar8x32(lo, mu));
        var nearerLower = Vector256.LessThan(x - lower, upper - x);
        index = mu + nearerLower.AsInt32();
        return Vector256.ConditionalSelect(nearerLower, lower, upper);
    }

    /// <summary>
    /// <see cref="BlockScaleScalar"/> with its 16 trial scales in 16 vector lanes. Each lane adds its 32 terms in
    /// ggml's order (no float sum is reassociated); the winner is then chosen in trial order as ggml does.
    /// </summary>
    [SkipLocalsInit]
    private static unsafe float BlockScaleAvx2(ReadOnlySpan<float> xbSpan, ReadOnlySpan<float> weightSpan, float max)
    {
        var values = Iq4Values.KValues;
        float* ids = stackalloc float[16];
        float* sx = stackalloc float[16];
        float* s2 = stackalloc float[16];
        float d = -max / values[0];
        ids[0] = 1 / d;
        for (int itry = -NTry; itry <= NTry; itry++) ids[itry + NTry + 1] = (itry + values[0]) / max;
        fixed (float* xb = xbSpan)
        fixed (float* weight = weightSpan)
        fixed (float* levels = LevelFloats)
        fixed (int* brackets = Brackets)
        {
            var lo = Vector256.Load(levels);
            var hi = Vector256.Load(levels + 8);
            var idA = Vector256.Load(ids);
            var idB = Vector256.Load(ids + 8);
            var sxA = Vector256<float>.Zero;
            var sxB = Vector256<float>.Zero;
            var s2A = Vector256<float>.Zero;
            var s2B = Vector256<float>.Zero;
            for (int j = 0; j < 32; j++)
            {
                var x = Vector256.Create(xb[j]);
                var w = Vector256.Create(weight[j]);
                var qA = NearestLevel(idA * x, brackets, lo, hi, out _);
                var qB = NearestLevel(idB * x, brackets, lo, hi, out _);
                var wqA = w * qA;
                var wqB = w * qB;
                sxA += wqA * x;
                sxB += wqB * x;
                s2A += wqA * qA;
                s2B += wqB * qB;
            }
            sxA.Store(sx);
            sxB.Store(sx + 8);
            s2A.Store(s2);
            s2B.Store(s2 + 8);
        }
        d = s2[0] > 0 ? sx[0] / s2[0] : 0f;
        float best = d * sx[0];
        for (int t = 1; t < 16; t++)
        {
            float sumqx = sx[t], sumq2 = s2[t];
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
            {
                d = sumqx / sumq2; best = d * sumqx;
            }
        }
        return d;
    }

    /// <summary><see cref="Levels"/> eight elements at a time (element-wise, so identical to the scalar loop).</summary>
    [SkipLocalsInit]
    private static unsafe void LevelsAvx2(ReadOnlySpan<float> xSpan, float id, Span<byte> L)
    {
        int* idx = stackalloc int[8];
        fixed (float* x = xSpan)
        fixed (float* levels = LevelFloats)
        fixed (int* brackets = Brackets)
        {
            var lo = Vector256.Load(levels);
            var hi = Vector256.Load(levels + 8);
            var vid = Vector256.Create(id);
            for (int j = 0; j < xSpan.Length; j += 8)
            {
                NearestLevel(vid * Vector256.Load(x + j), brackets, lo, hi, out var index);
                index.Store(idx);
                for (int k = 0; k < 8; k++) L[j + k] = (byte)idx[k];
            }
        }
    }
}
