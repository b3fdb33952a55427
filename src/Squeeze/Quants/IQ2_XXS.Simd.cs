using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ2_XXS
{
    // AVX2 (also used at the AVX-512 level: the grid rows are gathered with scalar loads either way, and 512-bit
    // vectors measured no faster). Lanes as in Iq2Dot: one 32-weight sub-block per vector.
    private static float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        var grid = Iq2Grids.IQ2XXS;
        var signs = Iq2Dot.SignMasks;
        ref ulong g = ref MemoryMarshal.GetArrayDataReference(grid);
        ref ulong sm = ref MemoryMarshal.GetArrayDataReference(signs);
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
                uint aux0 = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref qs, 8 * ib32));
                uint aux1 = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref qs, 8 * ib32 + 4));
                var q2 = Vector256.Create(
                    Unsafe.Add(ref g, aux0 & 255), Unsafe.Add(ref g, (aux0 >> 8) & 255),
                    Unsafe.Add(ref g, (aux0 >> 16) & 255), Unsafe.Add(ref g, aux0 >> 24)).AsByte();
                var s2 = Vector256.Create(
                    Unsafe.Add(ref sm, aux1 & 127), Unsafe.Add(ref sm, (aux1 >> 7) & 127),
                    Unsafe.Add(ref sm, (aux1 >> 14) & 127), Unsafe.Add(ref sm, (aux1 >> 21) & 127)).AsSByte();
                var q8v = Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32 * ib32)).AsSByte();
                var q8s = (q8v ^ s2) - s2;
                var dot = Avx2.MultiplyAddAdjacent(q2, q8s);
                sumi += Avx2.MultiplyAddAdjacent(dot, Vector256.Create((short)(2 * (aux1 >> 28) + 1)));
            }
            accf = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), accf);
        }
        return 0.125f * Iq2Dot.HorizontalSum(accf);
    }
}
