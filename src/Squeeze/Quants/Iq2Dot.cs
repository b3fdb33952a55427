using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Squeeze.Quants;

/// <summary>
/// Shared pieces of the IQ2/IQ1 dot products against Q8_K.
/// </summary>
/// <remarks>
/// ggml's x86 kernels keep eight float accumulators: per super-block, lane k holds the exact integer sum over
/// weights 4k..4k+3 of every 32-weight sub-block (times the sub-block scale), and is added as
/// <c>fma(d, (float)lane, acc[k])</c>; the eight are summed at the end as <c>hsum_float_8</c> does. Squeeze's scalar
/// reference and its SIMD paths compute the same integer lanes and the same float steps, so every level returns
/// the same float, and it equals ggml's.
/// Q8_K block: <c>d</c> f32 at 0, <c>qs</c> int8[256] at 4, <c>bsums</c> int16[16] at 260 (292 bytes).
/// </remarks>
internal static class Iq2Dot
{
    public const int Q8KBytes = 292;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Q8D(ReadOnlySpan<byte> y, int block) => BinaryPrimitives.ReadSingleLittleEndian(y.Slice(block * Q8KBytes));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<sbyte> Q8Qs(ReadOnlySpan<byte> y, int block) => MemoryMarshal.Cast<byte, sbyte>(y.Slice(block * Q8KBytes + 4, 256));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static short Q8BSum(ReadOnlySpan<byte> y, int block, int j) => BinaryPrimitives.ReadInt16LittleEndian(y.Slice(block * Q8KBytes + 260 + 2 * j));

    /// <summary><c>acc[k] = fma(d, lanes[k], acc[k])</c>, as <c>_mm256_fmadd_ps</c> of the converted lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Accumulate(Span<float> acc, float d, ReadOnlySpan<int> lanes)
    {
        for (int k = 0; k < 8; k++) acc[k] = MathF.FusedMultiplyAdd(d, lanes[k], acc[k]);
    }

    /// <summary>ggml's <c>hsum_float_8</c>: <c>((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7))</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalSum(ReadOnlySpan<float> a)
    {
        float r0 = a[4] + a[0], r1 = a[5] + a[1], r2 = a[6] + a[2], r3 = a[7] + a[3];
        return (r0 + r2) + (r1 + r3);
    }

    /// <summary><see cref="HorizontalSum(ReadOnlySpan{float})"/> of a vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalSum(Vector256<float> a)
    {
        var r = a.GetUpper() + a.GetLower();
        return (r.GetElement(0) + r.GetElement(2)) + (r.GetElement(1) + r.GetElement(3));
    }

    /// <summary>Adds the two 256-bit halves of 16 lanes (two sub-blocks side by side) into ggml's 8 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Fold(Vector512<int> v) => v.GetLower() + v.GetUpper();

    /// <summary>
    /// For each of the 128 stored sign fields (<see cref="Iq2Grids.KSigns"/>), 8 bytes of 0xFF where the weight
    /// is negative and 0 where it is positive: <c>(q ^ m) - m</c> applies the signs to 8 int8 values.
    /// </summary>
    public static readonly ulong[] SignMasks = BuildSignMasks();

    private static ulong[] BuildSignMasks()
    {
        var m = new ulong[128];
        for (int i = 0; i < 128; i++)
            for (int j = 0; j < 8; j++)
                if ((Iq2Grids.KSigns[i] & (1 << j)) != 0) m[i] |= 0xFFUL << (8 * j);
        return m;
    }

    /// <summary>
    /// For a byte holding two 4-bit scales (low nibble: weights 0..15 of a sub-block, high: 16..31), the int16
    /// multipliers <c>2*ls+1</c> for <c>MultiplyAddAdjacent</c>: 8 of the first, then 8 of the second.
    /// </summary>
    public static readonly Vector256<short>[] NibbleScales = BuildNibbleScales();

    private static Vector256<short>[] BuildNibbleScales()
    {
        var t = new Vector256<short>[256];
        for (int b = 0; b < 256; b++)
            t[b] = Vector256.Create(Vector128.Create((short)(2 * (b & 0xf) + 1)), Vector128.Create((short)(2 * (b >> 4) + 1)));
        return t;
    }

    /// <summary>For 6 bits holding two 3-bit scales (IQ1_M), the int16 multipliers as in <see cref="NibbleScales"/>.</summary>
    public static readonly Vector256<short>[] TripletScales = BuildTripletScales();

    private static Vector256<short>[] BuildTripletScales()
    {
        var t = new Vector256<short>[64];
        for (int b = 0; b < 64; b++)
            t[b] = Vector256.Create(Vector128.Create((short)(2 * (b & 7) + 1)), Vector128.Create((short)(2 * (b >> 3) + 1)));
        return t;
    }

    /// <summary>
    /// For 4 sign bits (one per group of 8 weights), 8 bytes of +1 or -1 per group (IQ1_M's shift deltas).
    /// </summary>
    public static readonly Vector256<sbyte>[] GroupSigns = BuildGroupSigns();

    private static Vector256<sbyte>[] BuildGroupSigns()
    {
        var t = new Vector256<sbyte>[16];
        var v = new sbyte[32];
        for (int b = 0; b < 16; b++)
        {
            for (int k = 0; k < 32; k++) v[k] = (sbyte)(((b >> (k / 8)) & 1) != 0 ? -1 : 1);
            t[b] = Vector256.Create<sbyte>(v);
        }
        return t;
    }
}
