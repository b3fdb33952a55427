using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Squeeze.Quants;

/// <summary>
/// Horizontal float sums in the exact order of ggml's x86 kernels, so that dot products can reproduce the
/// oracle's rounding: a scalar reference keeps the same lanes the SIMD code keeps and reduces them the same way.
/// </summary>
internal static class Lanes
{
    /// <summary>
    /// ggml's <c>hsum_float_8</c>: upper half plus lower half, then lanes (0+2) and (1+3), then those two.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Hsum8(ReadOnlySpan<float> a)
    {
        float r0 = a[4] + a[0], r1 = a[5] + a[1], r2 = a[6] + a[2], r3 = a[7] + a[3];
        return (r0 + r2) + (r1 + r3);
    }

    /// <inheritdoc cref="Hsum8(ReadOnlySpan{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Hsum8(Vector256<float> v)
    {
        var r = v.GetUpper() + v.GetLower();
        return (r.GetElement(0) + r.GetElement(2)) + (r.GetElement(1) + r.GetElement(3));
    }

    /// <summary>
    /// GCC's <c>_mm512_reduce_add_ps</c>: upper 256 bits plus lower 256 bits, then <see cref="Hsum8(ReadOnlySpan{float})"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Reduce16(ReadOnlySpan<float> a)
    {
        Span<float> t = stackalloc float[8];
        for (int j = 0; j < 8; j++) t[j] = a[j + 8] + a[j];
        return Hsum8(t);
    }

    /// <inheritdoc cref="Reduce16(ReadOnlySpan{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Reduce16(Vector512<float> v) => Hsum8(v.GetUpper() + v.GetLower());

    /// <summary><see cref="Reduce16(ReadOnlySpan{float})"/> of a 16-lane vector held as two 256-bit halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Reduce16(Vector256<float> lo, Vector256<float> hi) => Hsum8(hi + lo);
}

/// <summary>Byte geometry of the activation blocks the dot products read (ggml-common.h).</summary>
internal static class ActivationBlocks
{
    /// <summary>Q8_0: fp16 d, then 32 int8 qs.</summary>
    public const int Q8_0Bytes = 34;

    /// <summary>Q8_K: f32 d, 256 int8 qs, 16 int16 bsums (sums of groups of 16 qs).</summary>
    public const int Q8_KBytes = 292;
    public const int Q8_KQs = 4;
    public const int Q8_KBsums = 260;
}
