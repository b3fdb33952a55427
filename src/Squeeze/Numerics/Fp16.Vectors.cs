using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Numerics;

// Half-to-float on vectors without F16C's vcvtph2ps (which .NET does not expose). A half's exponent and mantissa,
// shifted left by 13, are the bits of a float equal to the half's magnitude times 2^-112: a normal half lands on a
// normal float, a subnormal half on a subnormal float, so one multiply by 2^112 gives the exact value for every
// finite half. Only exponent 31 (Inf, NaN) breaks the rule: it comes out as a finite float of 65536 or more.
//
// The fast loaders therefore widen every lane by that rule and keep a running maximum of the magnitudes in a guard;
// after a loop, HasSpecial(guard) tells whether any lane was Inf or NaN, and then the caller redoes the work with
// the exact loaders (Widen*), which give ggml's bits for those too (Inf as Inf, NaN made quiet with its payload, as
// the float multiply in ggml_compute_fp16_to_fp32 leaves it). Real weights and activations have no Inf/NaN, so the
// check costs one integer max per vector and the slow path never runs.
//
// The loaders sign-extend the 16-bit lanes (vpmovsxwd), so the half's sign lands in the float's sign bit without a
// shift: the result is (|h| << 13) * 2^112 with bit 31 of the sign-extended lane or-ed in (one vpternlogd).

public static partial class Fp16
{
    /// <summary>2^112: rebiases a half's exponent field shifted into a float's.</summary>
    private const float Scale112 = 5.192296858534828e33f;

    /// <summary>The smallest magnitude (bits without the sign) with exponent 31: Inf, then NaNs above it.</summary>
    private const int SpecialMagnitude = 0x7C00;

    /// <summary>
    /// 16 halves at <paramref name="source"/> + <paramref name="offset"/> to floats (AVX-512), exact for finite halves;
    /// <paramref name="guard"/> keeps the largest magnitude seen (start it at zero, test it with <see cref="HasSpecial(Vector512{int})"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(ref ushort source, nuint offset, ref Vector512<int> guard) =>
        WidenFinite(Avx512F.ConvertToVector512Int32(Vector256.LoadUnsafe(ref source, offset).AsInt16()), ref guard);

    /// <summary>8 halves to floats (AVX2), exact for finite halves; see <see cref="Load16(ref ushort, nuint, ref Vector512{int})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(ref ushort source, nuint offset, ref Vector256<int> guard) =>
        WidenFinite(Avx2.ConvertToVector256Int32(Vector128.LoadUnsafe(ref source, offset).AsInt16()), ref guard);

    /// <summary>16 halves to floats (AVX-512), exact for every half, Inf and NaN included (slower).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16Exact(ref ushort source, nuint offset) =>
        Widen(Avx512F.ConvertToVector512Int32(Vector256.LoadUnsafe(ref source, offset).AsInt16()));

    /// <summary>8 halves to floats (AVX2), exact for every half, Inf and NaN included (slower).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8Exact(ref ushort source, nuint offset) =>
        Widen(Avx2.ConvertToVector256Int32(Vector128.LoadUnsafe(ref source, offset).AsInt16()));

    /// <summary>
    /// Sign-extended halves to floats, exact for finite halves; Inf and NaN give finite garbage, recorded in
    /// <paramref name="guard"/> (the lanes' largest magnitude).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> WidenFinite(Vector512<int> h, ref Vector512<int> guard)
    {
        var m = h & Vector512.Create(0x7FFF);
        guard = Vector512.Max(guard, m);
        var magnitude = ((m << 13).AsSingle() * Vector512.Create(Scale112)).AsInt32();
        return Avx512F.TernaryLogic(magnitude, h, Vector512.Create(int.MinValue), 0xF8).AsSingle(); // a | (b & c)
    }

    /// <inheritdoc cref="WidenFinite(Vector512{int}, ref Vector512{int})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> WidenFinite(Vector256<int> h, ref Vector256<int> guard)
    {
        var m = h & Vector256.Create(0x7FFF);
        guard = Vector256.Max(guard, m);
        return (((m << 13).AsSingle() * Vector256.Create(Scale112)).AsInt32() | (h & Vector256.Create(int.MinValue))).AsSingle();
    }

    /// <inheritdoc cref="WidenFinite(Vector512{int}, ref Vector512{int})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> WidenFinite(Vector128<int> h, ref Vector128<int> guard)
    {
        var m = h & Vector128.Create(0x7FFF);
        guard = Vector128.Max(guard, m);
        return (((m << 13).AsSingle() * Vector128.Create(Scale112)).AsInt32() | (h & Vector128.Create(int.MinValue))).AsSingle();
    }

    /// <summary>Whether a guard of the fast loaders saw an Inf or NaN (then redo the work with the exact ones).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool HasSpecial(Vector512<int> guard) => Vector512.GreaterThanOrEqualAny(guard, Vector512.Create(SpecialMagnitude));

    /// <inheritdoc cref="HasSpecial(Vector512{int})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool HasSpecial(Vector256<int> guard) => Vector256.GreaterThanOrEqualAny(guard, Vector256.Create(SpecialMagnitude));

    /// <inheritdoc cref="HasSpecial(Vector512{int})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool HasSpecial(Vector128<int> guard) => Vector128.GreaterThanOrEqualAny(guard, Vector128.Create(SpecialMagnitude));

    /// <summary>
    /// Sign-extended (or zero-extended) halves to floats, exact for every half: ggml's bits, Inf as Inf and a NaN made
    /// quiet with its payload kept.
    /// </summary>
    public static Vector512<float> Widen(Vector512<int> h)
    {
        var m = h & Vector512.Create(0x7FFF);
        var shifted = m << 13;
        var finite = (shifted.AsSingle() * Vector512.Create(Scale112)).AsInt32();
        var special = shifted | Vector512.Create(0x7F800000) | (Vector512.GreaterThan(m, Vector512.Create(SpecialMagnitude)) & Vector512.Create(0x00400000));
        var value = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(m, Vector512.Create(SpecialMagnitude)), special, finite);
        return (value | ((h << 16) & Vector512.Create(int.MinValue))).AsSingle();
    }

    /// <inheritdoc cref="Widen(Vector512{int})"/>
    public static Vector256<float> Widen(Vector256<int> h)
    {
        var m = h & Vector256.Create(0x7FFF);
        var shifted = m << 13;
        var finite = (shifted.AsSingle() * Vector256.Create(Scale112)).AsInt32();
        var special = shifted | Vector256.Create(0x7F800000) | (Vector256.GreaterThan(m, Vector256.Create(SpecialMagnitude)) & Vector256.Create(0x00400000));
        var value = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(m, Vector256.Create(SpecialMagnitude)), special, finite);
        return (value | ((h << 16) & Vector256.Create(int.MinValue))).AsSingle();
    }

    /// <inheritdoc cref="Widen(Vector512{int})"/>
    public static Vector128<float> Widen(Vector128<int> h)
    {
        var m = h & Vector128.Create(0x7FFF);
        var shifted = m << 13;
        var finite = (shifted.AsSingle() * Vector128.Create(Scale112)).AsInt32();
        var special = shifted | Vector128.Create(0x7F800000) | (Vector128.GreaterThan(m, Vector128.Create(SpecialMagnitude)) & Vector128.Create(0x00400000));
        var value = Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(m, Vector128.Create(SpecialMagnitude)), special, finite);
        return (value | ((h << 16) & Vector128.Create(int.MinValue))).AsSingle();
    }
}
