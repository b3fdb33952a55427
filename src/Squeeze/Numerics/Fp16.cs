using System.Runtime.CompilerServices;

namespace Squeeze.Numerics;

/// <summary>
/// IEEE half precision as ggml stores it (<c>ggml_fp16_t</c>, raw <see cref="ushort"/> bits).
/// Conversion from float rounds to nearest, ties to even, like ggml's <c>ggml_compute_fp32_to_fp16</c>
/// and the F16C instruction; a NaN becomes the quiet NaN 0x7E00 with the input's sign, as in ggml.
/// </summary>
public static partial class Fp16
{
    /// <summary>
    /// Exact half-to-float by bit manipulation (F. Giesen's method): the same floats as a <see cref="Half"/> cast on all
    /// 65536 inputs, several times faster, which matters where every block scale and cached key is widened.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort h)
    {
        const uint shiftedExp = 0x7c00u << 13;
        uint o = (uint)(h & 0x7fff) << 13;
        uint exp = shiftedExp & o;
        o += (127 - 15) << 23;
        if (exp == shiftedExp) o += (128 - 16) << 23;               // Inf/NaN keep an all-ones exponent
        else if (exp == 0) o = BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(o + (1u << 23)) - 1f / 16384f); // zero, subnormal
        return BitConverter.UInt32BitsToSingle(o | (uint)(h & 0x8000) << 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float f)
    {
        if (float.IsNaN(f)) return (ushort)(0x7E00 | (BitConverter.SingleToUInt32Bits(f) >> 16 & 0x8000));
        return BitConverter.HalfToUInt16Bits((Half)f);
    }

    /// <summary>Rounds <paramref name="f"/> through fp16 and back, as storing a scale in fp16 does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float f) => ToFloat(FromFloat(f));
}

/// <summary>
/// bfloat16 as ggml stores it (<c>ggml_bf16_t</c>): the top 16 bits of a float. From float: round to nearest even;
/// a NaN keeps its top bits and is made quiet (ggml's <c>ggml_compute_fp32_to_bf16</c>).
/// </summary>
public static class Bf16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort h) => BitConverter.UInt32BitsToSingle((uint)h << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }
}
