using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Squeeze.Quants;

public sealed partial class F32Kernel
{
    private static float Body512(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int np)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, o), Vector512.LoadUnsafe(ref py, o), a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, o + 16), Vector512.LoadUnsafe(ref py, o + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, o + 32), Vector512.LoadUnsafe(ref py, o + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, o + 48), Vector512.LoadUnsafe(ref py, o + 48), a3);
        }
        return Lanes.Reduce16((a0 + a2) + (a1 + a3));
    }

    // The same 64 lanes as Body512, each 16-lane accumulator held as two 256-bit halves.
    private static float Body256(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int np)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref px, o), Vector256.LoadUnsafe(ref py, o), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref px, o + 8), Vector256.LoadUnsafe(ref py, o + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref px, o + 16), Vector256.LoadUnsafe(ref py, o + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref px, o + 24), Vector256.LoadUnsafe(ref py, o + 24), a3);
            a4 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref px, o + 32), Vector256.LoadUnsafe(ref py, o + 32), a4);
            a5 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref px, o + 40), Vector256.LoadUnsafe(ref py, o + 40), a5);
            a6 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref px, o + 48), Vector256.LoadUnsafe(ref py, o + 48), a6);
            a7 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref px, o + 56), Vector256.LoadUnsafe(ref py, o + 56), a7);
        }
        return Lanes.Reduce16((a0 + a4) + (a2 + a6), (a1 + a5) + (a3 + a7));
    }
}
