using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

internal static partial class Iq4Quantizer
{
    /// <summary>
    /// The bracket search in 16 buckets of 16 integers (t = floor(x) in [-128, 127], bucket (t + 128) / 16), so three
    /// <c>vpermd</c> replace the table gather: <c>ml = base + (t &gt;= first) + (t &gt;= second)</c> where first and second
    /// are the levels 1..14 inside the bucket (no bucket holds more than two). Same <c>ml</c> as <see cref="Brackets"/>.
    /// </summary>
    private static readonly int[] BucketTables = BuildBucketTables();

    private static int[] BuildBucketTables()
    {
        var values = Iq4Values.KValues;
        var tables = new int[48];
        for (int b = 0; b < 16; b++)
        {
            int lo = 16 * b - 128, hi = lo + 15;
            int below = 0;
            var inside = new List<int>();
            for (int k = 1; k <= 14; k++)
            {
                if (values[k] < lo) below++;
                else if (values[k] <= hi) inside.Add(values[k]);
            }
            if (inside.Count > 2) throw new InvalidOperationException("IQ4 bucket holds more than two levels");
            tables[b] = below;
            tables[16 + b] = inside.Count > 0 ? inside[0] : 1000;
            tables[32 + b] = inside.Count > 1 ? inside[1] : 1000;
        }
        return tables;
    }

    private readonly struct Tables512(Vector512<int> bucketBase, Vector512<int> first, Vector512<int> second, Vector512<float> levels)
    {
        public readonly Vector512<int> BucketBase = bucketBase, First = first, Second = second;
        public readonly Vector512<float> Levels = levels;

        public static unsafe Tables512 Load()
        {
            fixed (int* b = BucketTables)
            fixed (float* l = LevelFloats)
                return new Tables512(Vector512.Load(b), Vector512.Load(b + 16), Vector512.Load(b + 32), Vector512.Load(l));
        }
    }

    /// <summary><see cref="NearestLevel"/> for sixteen values, with the same result for every input.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> NearestLevel512(Vector512<float> x, in Tables512 tb, out Vector512<int> index)
    {
        var t = Avx512F.ConvertToVector512Int32WithTruncation(Vector512.Floor(x));
        t = Vector512.Min(Vector512.Max(t, Vector512.Create(-128)), Vector512.Create(127));
        var bucket = Vector512.ShiftRightArithmetic(t + Vector512.Create(128), 4);
        var ml = Avx512F.PermuteVar16x32(tb.BucketBase, bucket)
                 - Vector512.GreaterThanOrEqual(t, Avx512F.PermuteVar16x32(tb.First, bucket))
                 - Vector512.GreaterThanOrEqual(t, Avx512F.PermuteVar16x32(tb.Second, bucket));
        // !(x < 113): the top level, +Inf, NaN and values too large for the integer conversion.
        var top = ~Vector512.LessThan(x, Vector512.Create(113f)).AsInt32();
        ml = Vector512.ConditionalSelect(top, Vector512.Create(14), ml);
        var mu = ml + Vector512<int>.One;
        var lower = Avx512F.PermuteVar16x32(tb.Levels, ml);
        var upper = Avx512F.PermuteVar16x32(tb.Levels, mu);
        var nearerLower = Vector512.LessThan(x - lower, upper - x);
        index = mu + nearerLower.AsInt32();
        return Vector512.ConditionalSelect(nearerLower, lower, upper);
    }

    /// <summary><see cref="BlockScaleAvx2"/> with all 16 trials in one 512-bit vector.</summary>
    [SkipLocalsInit]
    private static unsafe float BlockScaleAvx512(ReadOnlySpan<float> xbSpan, ReadOnlySpan<float> weightSpan, float max)
    {
        var values = Iq4Values.KValues;
        float* ids = stackalloc float[16];
        float* sx = stackalloc float[16];
        float* s2 = stackalloc float[16];
        float d = -max / values[0];
        ids[0] = 1 / d;
        for (int itry = -NTry; itry <= NTry; itry++) ids[itry + NTry + 1] = (itry + values[0]) / max;
        var tb = Tables512.Load();
        fixed (float* xb = xbSpan)
        fixed (float* weight = weightSpan)
        {
            var id = Vector512.Load(ids);
            var sumx = Vector512<float>.Zero;
            var sum2 = Vector512<float>.Zero;
            for (int j = 0; j < 32; j++)
            {
                var x = Vector512.Create(xb[j]);
                var q = NearestLevel512(id * x, tb, out _);
                var wq = Vector512.Create(weight[j]) * q;
                sumx += wq * x;
                sum2 += wq * q;
            }
            sumx.Store(sx);
            sum2.Store(s2);
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

    /// <summary><see cref="Levels"/> sixteen elements at a time.</summary>
    private static unsafe void LevelsAvx512(ReadOnlySpan<float> xSpan, float id, Span<byte> L)
    {
        var tb = Tables512.Load();
        fixed (float* x = xSpan)
        fixed (byte* l = L)
        {
            var vid = Vector512.Create(id);
            for (int j = 0; j < xSpan.Length; j += 16)
            {
                NearestLevel512(vid * Vector512.Load(x + j), tb, out var index);
                Avx512F.ConvertToVector128Byte(index).Store(l + j);
            }
        }
    }
}
