using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class F16Kernel
{
    // ToFloat on 8 lanes: the half's exponent and mantissa placed in a float and scaled by 2^112, which is exact
    // for normal and subnormal halves alike; Inf and NaN get the float's all-ones exponent instead (NaN made quiet,
    // as ggml's recipe leaves it). The same bits as the scalar recipe, in fewer steps.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Widen(Vector256<uint> h)
    {
        // Finite halves (all of them in real weights) need only the scaling; Inf and NaN take the full recipe.
        var m = h & Vector256.Create(0x7FFFu);
        if (!Vector256.GreaterThanOrEqualAny(m, Vector256.Create(0x7C00u)))
            return (((m << 13).AsSingle() * Vector256.Create(Scale112)).AsUInt32() | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
        return WidenWithSpecials(h);
    }

    private static Vector256<float> WidenWithSpecials(Vector256<uint> h)
    {
        var magnitude = h & Vector256.Create(0x7FFFu);
        var shifted = magnitude << 13;
        var finite = (shifted.AsSingle() * Vector256.Create(Scale112)).AsUInt32();
        var special = shifted | Vector256.Create(0x7F800000u)
            | (Vector256.GreaterThan(magnitude, Vector256.Create(0x7C00u)) & Vector256.Create(0x00400000u));
        var isSpecial = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x7C00u));
        return (((h & Vector256.Create(0x8000u)) << 16) | Vector256.ConditionalSelect(isSpecial, special, finite)).AsSingle();
    }

    /// <inheritdoc cref="Widen(Vector256{uint})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(Vector512<uint> h)
    {
        var m = h & Vector512.Create(0x7FFFu);
        if (!Vector512.GreaterThanOrEqualAny(m, Vector512.Create(0x7C00u)))
            return (((m << 13).AsSingle() * Vector512.Create(Scale112)).AsUInt32() | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
        return WidenWithSpecials(h);
    }

    private static Vector512<float> WidenWithSpecials(Vector512<uint> h)
    {
        var magnitude = h & Vector512.Create(0x7FFFu);
        var shifted = magnitude << 13;
        var finite = (shifted.AsSingle() * Vector512.Create(Scale112)).AsUInt32();
        var special = shifted | Vector512.Create(0x7F800000u)
            | (Vector512.GreaterThan(magnitude, Vector512.Create(0x7C00u)) & Vector512.Create(0x00400000u));
        var isSpecial = Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x7C00u));
        return (((h & Vector512.Create(0x8000u)) << 16) | Vector512.ConditionalSelect(isSpecial, special, finite)).AsSingle();
    }

    private static readonly float Scale112 = BitConverter.UInt32BitsToSingle(0x77800000u);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load16(ref ushort p, nuint o) =>
        Widen(Avx512F.ConvertToVector512UInt32(Vector256.LoadUnsafe(ref p, o)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Load8(ref ushort p, nuint o) =>
        Widen(Avx2.ConvertToVector256Int32(Vector128.LoadUnsafe(ref p, o)).AsUInt32());

    /// <summary>
    /// Float to half on 16 lanes by ggml's bit recipe (<c>ggml_compute_fp32_to_fp16</c>): scaling by 2^112 and
    /// 2^-110 lets the float adder round the mantissa to nearest even (subnormal halves included), overflow
    /// becomes infinity and any NaN 0x7E00 with its sign, the same bits as <see cref="Numerics.Fp16.FromFloat"/>.
    /// </summary>
    private static int Quantize256(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        ref float ps = ref MemoryMarshal.GetReference(src);
        ref ushort pd = ref MemoryMarshal.GetReference(dst);
        var scaleToInf = Vector256.Create(BitConverter.UInt32BitsToSingle(0x77800000u));
        var scaleToZero = Vector256.Create(BitConverter.UInt32BitsToSingle(0x08800000u));
        int i = 0;
        for (; i + 16 <= src.Length; i += 16)
        {
            var lo = Narrow(Vector256.LoadUnsafe(ref ps, (nuint)i), scaleToInf, scaleToZero);
            var hi = Narrow(Vector256.LoadUnsafe(ref ps, (nuint)i + 8), scaleToInf, scaleToZero);
            Vector256.Narrow(lo, hi).StoreUnsafe(ref pd, (nuint)i);
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Narrow(Vector256<float> f, Vector256<float> scaleToInf, Vector256<float> scaleToZero)
    {
        var b = Vector256.Abs(f) * scaleToInf * scaleToZero;
        var w = f.AsUInt32();
        var shl1W = w + w;
        var sign = w & Vector256.Create(0x80000000u);
        var bias = Vector256.Max(shl1W & Vector256.Create(0xFF000000u), Vector256.Create(0x71000000u));
        b = ((bias >> 1) + Vector256.Create(0x07800000u)).AsSingle() + b;
        var bits = b.AsUInt32();
        var nonSign = ((bits >> 13) & Vector256.Create(0x7C00u)) + (bits & Vector256.Create(0xFFFu));
        var isNaN = Vector256.GreaterThan(shl1W, Vector256.Create(0xFF000000u));
        return (sign >> 16) | Vector256.ConditionalSelect(isNaN, Vector256.Create(0x7E00u), nonSign);
    }

    private static int Dequantize256(ReadOnlySpan<ushort> h, Span<float> dst)
    {
        ref ushort ph = ref MemoryMarshal.GetReference(h);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        for (; i + 8 <= h.Length; i += 8) Load8(ref ph, (nuint)i).StoreUnsafe(ref pd, (nuint)i);
        return i;
    }

    private static float Body512(ReadOnlySpan<ushort> x, ReadOnlySpan<ushort> y, int np)
    {
        ref ushort px = ref MemoryMarshal.GetReference(x);
        ref ushort py = ref MemoryMarshal.GetReference(y);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector512.FusedMultiplyAdd(Load16(ref px, o), Load16(ref py, o), a0);
            a1 = Vector512.FusedMultiplyAdd(Load16(ref px, o + 16), Load16(ref py, o + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(Load16(ref px, o + 32), Load16(ref py, o + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(Load16(ref px, o + 48), Load16(ref py, o + 48), a3);
        }
        return Lanes.Reduce16((a0 + a2) + (a1 + a3));
    }

    private static float Body256(ReadOnlySpan<ushort> x, ReadOnlySpan<ushort> y, int np)
    {
        ref ushort px = ref MemoryMarshal.GetReference(x);
        ref ushort py = ref MemoryMarshal.GetReference(y);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector256.FusedMultiplyAdd(Load8(ref px, o), Load8(ref py, o), a0);
            a1 = Vector256.FusedMultiplyAdd(Load8(ref px, o + 8), Load8(ref py, o + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(Load8(ref px, o + 16), Load8(ref py, o + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(Load8(ref px, o + 24), Load8(ref py, o + 24), a3);
            a4 = Vector256.FusedMultiplyAdd(Load8(ref px, o + 32), Load8(ref py, o + 32), a4);
            a5 = Vector256.FusedMultiplyAdd(Load8(ref px, o + 40), Load8(ref py, o + 40), a5);
            a6 = Vector256.FusedMultiplyAdd(Load8(ref px, o + 48), Load8(ref py, o + 48), a6);
            a7 = Vector256.FusedMultiplyAdd(Load8(ref px, o + 56), Load8(ref py, o + 56), a7);
        }
        return Lanes.Reduce16((a0 + a4) + (a2 + a6), (a1 + a5) + (a3 + a7));
    }
}
