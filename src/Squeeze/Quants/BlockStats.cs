using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>
/// Vector forms of the per-block extremes that ggml's reference quantizers find with a sequential loop. A vector
/// max or min gives the same value as the loop for finite, non-zero results; ggml's loop also fixes which of
/// several equal candidates wins (the first), which matters only for the sign of a zero or the sign of the
/// value of largest magnitude. Each method returns false when it cannot vouch for the loop's result (a NaN in
/// the block, a zero or infinite extreme), and the caller then runs the scalar loop.
/// </summary>
internal static unsafe class BlockStats
{
    /// <summary>Whether the vector forms may run at the current SIMD level.</summary>
    public static bool Enabled
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Simd.Level >= SimdLevel.Avx2 && Avx2.IsSupported;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool HasNaN(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d) =>
        Avx.MoveMask(Avx.Or(Avx.CompareUnordered(a, b), Avx.CompareUnordered(c, d))) != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HMax(Vector256<float> v)
    {
        Vector128<float> m = Sse.Max(v.GetLower(), v.GetUpper());
        m = Sse.Max(m, Sse.MoveHighToLow(m, m));
        return Sse.MaxScalar(m, Sse.Shuffle(m, m, 1)).ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HMin(Vector256<float> v)
    {
        Vector128<float> m = Sse.Min(v.GetLower(), v.GetUpper());
        m = Sse.Min(m, Sse.MoveHighToLow(m, m));
        return Sse.MinScalar(m, Sse.Shuffle(m, m, 1)).ToScalar();
    }

    /// <summary>
    /// The smallest and largest of 32 values as <c>if (v &lt; min) min = v; if (v &gt; max) max = v;</c> from
    /// (FLT_MAX, -FLT_MAX) finds them (Q4_1, Q5_1).
    /// </summary>
    public static bool TryMinMax32(float* x, out float min, out float max)
    {
        var a = Vector256.Load(x); var b = Vector256.Load(x + 8); var c = Vector256.Load(x + 16); var d = Vector256.Load(x + 24);
        min = HMin(Avx.Min(Avx.Min(a, b), Avx.Min(c, d)));
        max = HMax(Avx.Max(Avx.Max(a, b), Avx.Max(c, d)));
        if (HasNaN(a, b, c, d)) return false;
        return min != 0 && max != 0 && min != float.PositiveInfinity && max != float.NegativeInfinity;
    }

    /// <summary>
    /// The largest magnitude of <paramref name="n"/> (a multiple of 32) values and the first value that has it, as
    /// <c>if (amax &lt; fabsf(v)) { amax = fabsf(v); max = v; }</c> from zero finds them (Q4_0, Q5_0; with &gt;, Q8_K).
    /// </summary>
    public static bool TryAbsMax(float* x, int n, out float amax, out float max)
    {
        var sign = Vector256.Create(0x7fffffff).AsSingle();
        var acc = Vector256<float>.Zero;
        var nan = Vector256<float>.Zero;
        for (int i = 0; i < n; i += 32)
        {
            var a = Avx.And(Vector256.Load(x + i), sign); var b = Avx.And(Vector256.Load(x + i + 8), sign);
            var c = Avx.And(Vector256.Load(x + i + 16), sign); var d = Avx.And(Vector256.Load(x + i + 24), sign);
            acc = Avx.Max(acc, Avx.Max(Avx.Max(a, b), Avx.Max(c, d)));
            nan = Avx.Or(nan, Avx.Or(Avx.CompareUnordered(a, b), Avx.CompareUnordered(c, d)));
        }
        amax = HMax(acc);
        max = 0;
        if (Avx.MoveMask(nan) != 0) return false;
        if (amax == 0) return true;
        for (int i = 0; ; i++)
            if (MathF.Abs(x[i]) == amax) { max = x[i]; return true; }
    }

    /// <summary>The largest magnitude of 32 values as <c>amax = MAX(amax, fabsf(v))</c> from zero finds it (Q8_0, Q8_1).</summary>
    public static bool TryAbsMax32(float* x, out float amax)
    {
        var sign = Vector256.Create(0x7fffffff).AsSingle();
        var a = Avx.And(Vector256.Load(x), sign); var b = Avx.And(Vector256.Load(x + 8), sign);
        var c = Avx.And(Vector256.Load(x + 16), sign); var d = Avx.And(Vector256.Load(x + 24), sign);
        amax = HMax(Avx.Max(Avx.Max(a, b), Avx.Max(c, d)));
        return !HasNaN(a, b, c, d);
    }

    /// <summary>
    /// The requantization step of the k-quants on <paramref name="n"/> (a multiple of 8) values:
    /// <c>L[i] = clamp(nearest_int((x[i] + add) / d), lo, hi) + offset</c>, or without the addition when
    /// <paramref name="hasAdd"/> is false. Division and nearest_int are exact per lane.
    /// </summary>
    public static void Requantize(float* x, int n, bool hasAdd, float add, float d, int lo, int hi, int offset, byte* L)
    {
        var vadd = Vector256.Create(add);
        var vd = Vector256.Create(d);
        var vlo = Vector256.Create(lo);
        var vhi = Vector256.Create(hi);
        var voff = Vector256.Create(offset);
        for (int i = 0; i < n; i += 16)
        {
            Vector256<int> Level(int o)
            {
                var v = Vector256.Load(x + i + o);
                if (hasAdd) v = Avx.Add(v, vadd);
                var t = Avx.Add(Avx.Divide(v, vd), Vector256.Create(12582912f)).AsInt32();
                var l = (t & Vector256.Create(0x007fffff)) - Vector256.Create(0x00400000);
                return Avx2.Max(vlo, Avx2.Min(vhi, l)) + voff;
            }
            var s = Vector256.Narrow(Level(0), Level(8));
            Vector128.Narrow(s.GetLower(), s.GetUpper()).AsByte().Store(L + i);
        }
    }

    /// <summary>C's <c>roundf</c> on eight lanes: to nearest, halves away from zero (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> RoundAwayFromZero(Vector256<float> v)
    {
        var t = Avx.RoundToZero(v);
        var frac = Avx.And(v - t, Vector256.Create(0x7fffffff).AsSingle());
        var step = Avx.And(Avx.CompareGreaterThanOrEqual(frac, Vector256.Create(0.5f)),
            Avx.Or(Avx.And(v, Vector256.Create(unchecked((int)0x80000000)).AsSingle()), Vector256.Create(1f)));
        return t + step;
    }
}
