using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ2_XS
{
    // AVX2, also used at the AVX-512 level (the grid rows are gathered with scalar loads either way).
    // One 32-weight sub-block per vector, two per step; lanes 0..3 take the first 4-bit scale, lanes 4..7 the second.
    private static float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        ref ulong g = ref MemoryMarshal.GetArrayDataReference(Iq2Grids.IQ2XS);
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
            ref byte sc = ref Unsafe.Add(ref xb, 66);
            var sumi1 = Vector256<int>.Zero;
            var sumi2 = Vector256<int>.Zero;
            for (int ib32 = 0; ib32 < QK_K / 32; ib32 += 2)
            {
                sumi1 += SubBlock(ref g, ref sm, ref Unsafe.Add(ref qs, 8 * ib32), ref Unsafe.Add(ref q8, 32 * ib32), Unsafe.Add(ref sc, ib32));
                sumi2 += SubBlock(ref g, ref sm, ref Unsafe.Add(ref qs, 8 * ib32 + 8), ref Unsafe.Add(ref q8, 32 * ib32 + 32), Unsafe.Add(ref sc, ib32 + 1));
            }
            accf = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi1 + sumi2), accf);
        }
        return 0.125f * Iq2Dot.HorizontalSum(accf);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SubBlock(ref ulong g, ref ulong sm, ref byte qs, ref byte q8, uint sc)
    {
        ulong q = Unsafe.ReadUnaligned<ulong>(ref qs);
        uint q0 = (uint)q & 0xffff, q1 = (uint)(q >> 16) & 0xffff, q2 = (uint)(q >> 32) & 0xffff, q3 = (uint)(q >> 48);
        var gv = Vector256.Create(Unsafe.Add(ref g, q0 & 511), Unsafe.Add(ref g, q1 & 511),
                                  Unsafe.Add(ref g, q2 & 511), Unsafe.Add(ref g, q3 & 511)).AsByte();
        var s2 = Vector256.Create(Unsafe.Add(ref sm, q0 >> 9), Unsafe.Add(ref sm, q1 >> 9),
                                  Unsafe.Add(ref sm, q2 >> 9), Unsafe.Add(ref sm, q3 >> 9)).AsSByte();
        var q8v = Vector256.LoadUnsafe(ref q8).AsSByte();
        var dot = Avx2.MultiplyAddAdjacent(gv, (q8v ^ s2) - s2);
        return Avx2.MultiplyAddAdjacent(dot, Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Iq2Dot.NibbleScales), (int)sc));
    }
}
