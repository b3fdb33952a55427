using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ2_XS
{
    // AVX2, also used at the AVX-512 level (the grid rows are gathered with scalar loads either way).
    // One 32-weight sub-block per vector; lanes 0..3 take the first 4-bit scale, lanes 4..7 the second.
    private static float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        ref ulong g = ref MemoryMarshal.GetArrayDataReference(Iq2Grids.IQ2XS);
        ref ulong sm = ref MemoryMarshal.GetArrayDataReference(Iq2Dot.SignMasks);
        var accf = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb)) * Iq2Dot.Q8D(y, i);
            ref byte q8 = ref MemoryMarshal.GetReference(y.Slice(i * Iq2Dot.Q8KBytes + 4, QK_K));
            ref byte qs = ref MemoryMarshal.GetReference(xb.Slice(2));
            var sumi = Vector256<int>.Zero;
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                ulong q = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref qs, 8 * ib32));
                uint q0 = (uint)q & 0xffff, q1 = (uint)(q >> 16) & 0xffff, q2 = (uint)(q >> 32) & 0xffff, q3 = (uint)(q >> 48);
                var gv = Vector256.Create(Unsafe.Add(ref g, q0 & 511), Unsafe.Add(ref g, q1 & 511),
                                          Unsafe.Add(ref g, q2 & 511), Unsafe.Add(ref g, q3 & 511)).AsByte();
                var s2 = Vector256.Create(Unsafe.Add(ref sm, q0 >> 9), Unsafe.Add(ref sm, q1 >> 9),
                                          Unsafe.Add(ref sm, q2 >> 9), Unsafe.Add(ref sm, q3 >> 9)).AsSByte();
                var q8v = Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32 * ib32)).AsSByte();
                var dot = Avx2.MultiplyAddAdjacent(gv, (q8v ^ s2) - s2);
                byte sc = xb[66 + ib32];
                var ls = Vector256.Create(Vector128.Create((short)(2 * (sc & 0xf) + 1)), Vector128.Create((short)(2 * (sc >> 4) + 1)));
                sumi += Avx2.MultiplyAddAdjacent(dot, ls);
            }
            accf = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), accf);
        }
        return 0.125f * Iq2Dot.HorizontalSum(accf);
    }
}
