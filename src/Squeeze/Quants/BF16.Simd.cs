using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class BF16Kernel
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load16(ref ushort p, nuint o) =>
        (Avx512F.ConvertToVector512UInt32(Vector256.LoadUnsafe(ref p, o)) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Load8(ref ushort p, nuint o) =>
        (Avx2.ConvertToVector256Int32(Vector128.LoadUnsafe(ref p, o)) << 16).AsSingle();

    /// <summary>
    /// <see cref="Numerics.Bf16.FromFloat"/> on 16 lanes: round to nearest even by adding 0x7FFF plus the lowest
    /// kept bit, and a NaN made quiet instead.
    /// </summary>
    private static int Quantize256(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        ref float ps = ref MemoryMarshal.GetReference(src);
        ref ushort pd = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        for (; i + 16 <= src.Length; i += 16)
        {
            var lo = Round(Vector256.LoadUnsafe(ref ps, (nuint)i).AsUInt32());
            var hi = Round(Vector256.LoadUnsafe(ref ps, (nuint)i + 8).AsUInt32());
            Vector256.Narrow(lo, hi).StoreUnsafe(ref pd, (nuint)i);
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Round(Vector256<uint> u)
    {
        var isNaN = Vector256.GreaterThan(u & Vector256.Create(0x7FFFFFFFu), Vector256.Create(0x7F800000u));
        var rounded = (u + Vector256.Create(0x7FFFu) + ((u >> 16) & Vector256<uint>.One)) >> 16;
        return Vector256.ConditionalSelect(isNaN, (u >> 16) | Vector256.Create(64u), rounded);
    }

    private static int Dequantize256(ReadOnlySpan<ushort> h, Span<float> dst)
    {
        ref ushort ph = ref MemoryMarshal.GetReference(h);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        for (; i + 8 <= h.Length; i += 8) Load8(ref ph, (nuint)i).StoreUnsafe(ref pd, (nuint)i);
        return i;
    }

    private static (float, float) Body512(ReadOnlySpan<ushort> x, ReadOnlySpan<ushort> y, int np)
    {
        ref ushort px = ref MemoryMarshal.GetReference(x);
        ref ushort py = ref MemoryMarshal.GetReference(y);
        Vector512<float> c1 = default, c2 = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            c1 = Vector512.FusedMultiplyAdd(Load16(ref px, o), Load16(ref py, o), c1);
            c2 = Vector512.FusedMultiplyAdd(Load16(ref px, o + 16), Load16(ref py, o + 16), c2);
        }
        return (Lanes.Reduce16(c1), Lanes.Reduce16(c2));
    }

    private static (float, float) Body256(ReadOnlySpan<ushort> x, ReadOnlySpan<ushort> y, int np)
    {
        ref ushort px = ref MemoryMarshal.GetReference(x);
        ref ushort py = ref MemoryMarshal.GetReference(y);
        Vector256<float> c1Lo = default, c1Hi = default, c2Lo = default, c2Hi = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            c1Lo = Vector256.FusedMultiplyAdd(Load8(ref px, o), Load8(ref py, o), c1Lo);
            c1Hi = Vector256.FusedMultiplyAdd(Load8(ref px, o + 8), Load8(ref py, o + 8), c1Hi);
            c2Lo = Vector256.FusedMultiplyAdd(Load8(ref px, o + 16), Load8(ref py, o + 16), c2Lo);
            c2Hi = Vector256.FusedMultiplyAdd(Load8(ref px, o + 24), Load8(ref py, o + 24), c2Hi);
        }
        return (Lanes.Reduce16(c1Lo, c1Hi), Lanes.Reduce16(c2Lo, c2Hi));
    }
}
