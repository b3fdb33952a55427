using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ1_M
{
    private const ulong PlusOnes = 0x0101010101010101UL;
    private const ulong MinusOnes = 0xFFFFFFFFFFFFFFFFUL;

    // AVX2, also used at the AVX-512 level (the grid rows are gathered with scalar loads either way).
    // Grid terms as |g| * sign(q8, g); delta terms as 1 * sign(q8, +-1) per group of 8; both times the 3-bit scales.
    private static float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        ref ulong g = ref MemoryMarshal.GetArrayDataReference(Iq2Grids.IQ1S);
        var acc1 = Vector256<float>.Zero;
        var acc2 = Vector256<float>.Zero;
        var ones = Vector256.Create((byte)1);
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            ref byte xr = ref MemoryMarshal.GetReference(xb);
            ref byte q8 = ref MemoryMarshal.GetReference(y.Slice(i * Iq2Dot.Q8KBytes + 4, QK_K));
            var sumi1 = Vector256<int>.Zero;
            var sumi2 = Vector256<int>.Zero;
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                uint qs = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xr, 4 * ib));
                uint qh0 = Unsafe.Add(ref xr, 32 + 2 * ib), qh1 = Unsafe.Add(ref xr, 33 + 2 * ib);
                var gv = Vector256.Create(
                    Unsafe.Add(ref g, (qs & 255) | ((qh0 << 8) & 0x700)), Unsafe.Add(ref g, ((qs >> 8) & 255) | ((qh0 << 4) & 0x700)),
                    Unsafe.Add(ref g, ((qs >> 16) & 255) | ((qh1 << 8) & 0x700)), Unsafe.Add(ref g, (qs >> 24) | ((qh1 << 4) & 0x700))).AsSByte();
                var delta = Vector256.Create(
                    (qh0 & 0x08) != 0 ? MinusOnes : PlusOnes, (qh0 & 0x80) != 0 ? MinusOnes : PlusOnes,
                    (qh1 & 0x08) != 0 ? MinusOnes : PlusOnes, (qh1 & 0x80) != 0 ? MinusOnes : PlusOnes).AsSByte();
                int sc = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref xr, 48 + 2 * (ib / 2)));
                int shift = 6 * (ib % 2);
                var ls = Vector256.Create(Vector128.Create((short)(2 * ((sc >> shift) & 7) + 1)), Vector128.Create((short)(2 * ((sc >> (shift + 3)) & 7) + 1)));
                var q8v = Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32 * ib)).AsSByte();
                var dot1 = Avx2.MultiplyAddAdjacent(Avx2.Abs(gv), Avx2.Sign(q8v, gv));
                var dot2 = Avx2.MultiplyAddAdjacent(ones, Avx2.Sign(q8v, delta));
                sumi1 += Avx2.MultiplyAddAdjacent(dot1, ls);
                sumi2 += Avx2.MultiplyAddAdjacent(dot2, ls);
            }
            float d = Iq2Dot.Q8D(y, i) * Fp16.ToFloat(ScaleBits(xb));
            var dv = Vector256.Create(d);
            acc1 = Fma.MultiplyAdd(dv, Avx.ConvertToVector256Single(sumi1), acc1);
            acc2 = Fma.MultiplyAdd(dv, Avx.ConvertToVector256Single(sumi2), acc2);
        }
        return Iq2Dot.HorizontalSum(acc1) + Delta * Iq2Dot.HorizontalSum(acc2);
    }
}
