namespace Squeeze.Quants;

/// <summary>C conversions as ggml's x86 builds execute them, where .NET's differ.</summary>
internal static class CConversions
{
    /// <summary>
    /// C's <c>(int)</c> of a float on x86 (cvttss2si): truncation, with NaN and out-of-range values giving
    /// int.MinValue where .NET saturates. ggml's casts to <c>uint8_t</c> go through the same instruction and keep
    /// the low byte. Only reached for non-finite intermediates (a subnormal block maximum, an infinite input).
    /// </summary>
    public static int TruncateToInt(float v) =>
        v >= -2147483648f && v < 2147483648f ? (int)v : int.MinValue;

    /// <summary>
    /// glibc's <c>lroundf</c> on x86-64 (64-bit <c>long</c>): halves away from zero, and NaN, infinities and values
    /// beyond the range of <c>long</c> give long.MinValue, as its final cast does. The ternary quantizers add 1 and
    /// keep the low bits, so an infinite <c>x / d</c> (a subnormal block maximum) makes the code 1, not a saturated one.
    /// </summary>
    public static long LRound(float v) =>
        v > -9223372036854775808f && v < 9223372036854775808f ? (long)MathF.Round(v, MidpointRounding.AwayFromZero) : long.MinValue;
}
