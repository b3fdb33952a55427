using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class F16Kernel
{
    // ToFloat on 16 or 8 lanes at once: the same integer and float steps, so the same bits.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(Vector512<uint> w)
    {
        w <<= 16;
        var sign = w & Vector512.Create(0x80000000u);
        var twoW = w + w;
        var normalized = ((twoW >> 4) + Vector512.Create(0x70000000u)).AsSingle() * Vector512.Create(ExpScale);
        var denormalized = ((twoW >> 17) | Vector512.Create(0x3F000000u)).AsSingle() - Vector512.Create(0.5f);
        var isDenormal = Vector512.LessThan(twoW, Vector512.Create(0x08000000u));
        return (sign | Vector512.ConditionalSelect(isDenormal, denormalized.AsUInt32(), normalized.AsUInt32())).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(Vector256<uint> w)
    {
        w <<= 16;
        var sign = w & Vector256.Create(0x80000000u);
        var twoW = w + w;
        var normalized = ((twoW >> 4) + Vector256.Create(0x70000000u)).AsSingle() * Vector256.Create(ExpScale);
        var denormalized = ((twoW >> 17) | Vector256.Create(0x3F000000u)).AsSingle() - Vector256.Create(0.5f);
        var isDenormal = Vector256.LessThan(twoW, Vector256.Create(0x08000000u));
        return (sign | Vector256.ConditionalSelect(isDenormal, denormalized.AsUInt32(), normalized.AsUInt32())).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load16(ref ushort p, nuint o) =>
        Widen(Avx512F.ConvertToVector512UInt32(Vector256.LoadUnsafe(ref p, o)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Load8(ref ushort p, nuint o) =>
        Widen(Avx2.ConvertToVector256Int32(Vector128.LoadUnsafe(ref p, o)).AsUInt32());

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
