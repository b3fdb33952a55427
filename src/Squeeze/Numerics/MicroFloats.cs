using System.Runtime.CompilerServices;

namespace Squeeze.Numerics;

/// <summary>
/// E8M0, the shared block exponent of the OCP microscaling formats (MXFP4): an unsigned byte <c>e</c> meaning
/// 2^(e - 127). ggml never produces or decodes the NaN code 0xFF specially, so neither does Squeeze.
/// </summary>
public static class E8M0
{
    /// <summary>2^(e - 127) (ggml's <c>ggml_e8m0_to_fp32</c>); e = 0 is the subnormal 2^-127.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(byte e) => BitConverter.UInt32BitsToSingle(e == 0 ? 0x00400000u : (uint)e << 23);

    /// <summary>
    /// Half of <see cref="ToFloat"/>, 2^(e - 128) (ggml's <c>ggml_e8m0_to_fp32_half</c>). MXFP4 stores its E2M1
    /// values doubled (the table <c>kvalues_fp4</c>), so the block scale is halved to compensate.
    /// e = 0 and e = 1 give the subnormals 2^-128 and 2^-127.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloatHalf(byte e) => BitConverter.UInt32BitsToSingle(e < 2 ? 0x00200000u << e : (uint)(e - 1) << 23);
}

/// <summary>
/// UE4M3, NVFP4's per-16-element scale: 4 exponent bits (bias 7) and 3 mantissa bits, no sign (bit 7 is ignored
/// on decoding), 0x7F decodes to zero. Conversions follow ggml's <c>ggml_ue4m3_to_fp32</c> and
/// <c>ggml_fp32_to_ue4m3</c> exactly, including their rounding shortcuts.
/// </summary>
public static class UE4M3
{
    private static readonly float[] Table = BuildTable();

    /// <summary>
    /// The value of <paramref name="x"/> times 0.5, as ggml returns it: NVFP4, like MXFP4, multiplies doubled E2M1 values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloatHalf(byte x) => Table[x];

    /// <summary>
    /// Encodes a positive scale. Non-positive and NaN give 0; values above 448 clamp to 448; the exponent range
    /// saturates to 0x7E (448). Normal values round half up on the first dropped mantissa bit (not to even);
    /// subnormals use <c>(int)(x * 512 + 0.5f)</c>, as ggml does.
    /// </summary>
    public static byte FromFloat(float x)
    {
        if (!(x > 0f)) return 0;
        if (x > 448f) x = 448f;
        uint bits = BitConverter.SingleToUInt32Bits(x);
        int exp = (int)((bits >> 23) & 0xFF) - 127 + 7;
        int man = (int)((bits >> 20) & 0x7);
        if (exp <= 0)
        {
            int sub = (int)(x * 512f + 0.5f);
            if (sub > 7) sub = 7;
            return sub < 1 ? (byte)0 : (byte)sub;
        }
        if (exp >= 15) return 0x7E;
        man += (int)((bits >> 19) & 1);
        if (man > 7)
        {
            man = 0;
            if (++exp >= 15) return 0x7E;
        }
        return (byte)((exp << 3) | man);
    }

    private static float[] BuildTable()
    {
        var t = new float[256];
        for (int i = 0; i < 256; i++) t[i] = Decode((byte)i);
        return t;
    }

    // Exact: every UE4M3 value is a small integer times a power of two, so the products below do not round.
    private static float Decode(byte x)
    {
        if (x == 0 || x == 0x7F) return 0f;
        int exp = (x >> 3) & 0xF;
        int man = x & 0x7;
        float raw = exp == 0 ? MathF.ScaleB(man, -9) : MathF.ScaleB(1f + man / 8f, exp - 7);
        return raw * 0.5f;
    }
}
