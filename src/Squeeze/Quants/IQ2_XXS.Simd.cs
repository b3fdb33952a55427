using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ2_XXS
{
    // AVX2, also used at the AVX-512 level (the grid rows are gathered with scalar loads either way).
    // Lanes as in Iq2Dot: one 32-weight sub-block per vector, two sub-blocks per step in separate accumulators.
    private static float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        ref ulong g = ref MemoryMarshal.GetArrayDataReference(Iq2Grids.IQ2XXS);
        ref ulong sm = ref MemoryMarshal.GetArrayDataReference(Iq2Dot.SignMasks);
        ref byte xr = ref MemoryMarshal.GetReference(x);
        ref byte yr = ref MemoryMarshal.GetReference(y);
        var accf = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            ref byte xb = ref Unsafe.Add(ref xr, i * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref yr, i * Iq2Dot.Q8KBytes);
            float d = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(ref xb)) * Unsafe.ReadUnaligned<float>(ref yb);
            ref byte q8 = ref Unsafe.Add(ref yb, 4);
            ref byte qs = ref Unsafe.Add(ref xb, 2);
            var sumi1 = Vector256<int>.Zero;
            var sumi2 = Vector256<int>.Zero;
            for (int ib32 = 0; ib32 < QK_K / 32; ib32 += 2)
            {
                sumi1 += SubBlock(ref g, ref sm, ref Unsafe.Add(ref qs, 8 * ib32), ref Unsafe.Add(ref q8, 32 * ib32));
                sumi2 += SubBlock(ref g, ref sm, ref Unsafe.Add(ref qs, 8 * ib32 + 8), ref Unsafe.Add(ref q8, 32 * ib32 + 32));
            }
            accf = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi1 + sumi2), accf);
        }
        return 0.125f * Iq2Dot.HorizontalSum(accf);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SubBlock(ref ulong g, ref ulong sm, ref byte qs, ref byte q8)
    {
        uint aux0 = Unsafe.ReadUnaligned<uint>(ref qs);
        uint aux1 = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref qs, 4));
        var q2 = Vector256.Create(
            Unsafe.Add(ref g, aux0 & 255), Unsafe.Add(ref g, (aux0 >> 8) & 255),
            Unsafe.Add(ref g, (aux0 >> 16) & 255), Unsafe.Add(ref g, aux0 >> 24)).AsByte();
        var s2 = Vector256.Create(
            Unsafe.Add(ref sm, aux1 & 127), Unsafe.Add(ref sm, (aux1 >> 7) & 127),
            Unsafe.Add(ref sm, (aux1 >> 14) & 127), Unsafe.Add(ref sm, (aux1 >> 21) & 127)).AsSByte();
        var q8v = Vector256.LoadUnsafe(ref q8).AsSByte();
        var dot = Avx2.MultiplyAddAdjacent(q2, (q8v ^ s2) - s2);
        return Avx2.MultiplyAddAdjacent(dot, Vector256.Create((short)(2 * (aux1 >> 28) + 1)));
    }
}
