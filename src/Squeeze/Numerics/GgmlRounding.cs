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

    /// <summary>
    /// glibc's <c>lroundf</c> on x86-64 (64-bit <c>long</c>): halves away from zero, and NaN, infinities and values
    /// beyond the range of <c>long</c> give long.MinValue, as its final cast does (.NET would saturate). The ternary
    /// quantizers add 1 and keep the low bits, so an infinite <c>x / d</c> (a subnormal block maximum) makes the code 1.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long LRound(float x) =>
        x > -9223372036854775808f && x < 9223372036854775808f ? (long)MathF.Round(x, MidpointRounding.AwayFromZero) : long.MinValue;

    /// <summary>
    /// C's <c>(int)</c> of a float on x86 (cvttss2si): truncation, with NaN and out-of-range values giving
    /// int.MinValue where .NET saturates. ggml's casts to <c>int8_t</c>/<c>uint8_t</c> go through the same instruction
    /// and keep the low byte. Only reached for non-finite intermediates (a subnormal block maximum, an infinite input).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int TruncateToInt(float x) => x >= -2147483648f && x < 2147483648f ? (int)x : int.MinValue;
}
