using System.Runtime.CompilerServices;

namespace Squeeze.Numerics;

/// <summary>
/// ggml's three rounding idioms. Quantizers must use the one the reference uses at each place, or bytes differ on ties.
/// </summary>
public static class GgmlRounding
{
    /// <summary>
    /// ggml's <c>nearest_int</c>: adds 1.5 * 2^23 so the FPU rounds to nearest, ties to even (|x| &lt;= 4194303).
    /// Used by k-quants and i-quants.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestInt(float x)
    {
        float v = x + 12582912f;
        return (BitConverter.SingleToInt32Bits(v) & 0x007fffff) - 0x00400000;
    }

    /// <summary>C's <c>roundf</c>: to nearest, halves away from zero (Q8_0, Q8_1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundAwayFromZero(float x) => MathF.Round(x, MidpointRounding.AwayFromZero);

    /// <summary>C's <c>lroundf</c>: <see cref="RoundAwayFromZero"/> as an integer (ternary types).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LRound(float x) => (int)MathF.Round(x, MidpointRounding.AwayFromZero);
}
