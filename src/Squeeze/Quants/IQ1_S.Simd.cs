using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ1_S
{
    // AVX2, also used at the AVX-512 level (the grid rows are gathered with scalar loads either way).
    // Grid values are -1/0/1: |g| * sign(q8, g) with unsigned-by-signed byte products, as ggml's mul_add_epi8.
    private static float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        ref ulong g = ref MemoryMarshal.GetArrayDataReference(Iq2Grids.IQ1S);
        ref byte xr = ref MemoryMarshal.GetReference(x);
        ref byte yr = ref MemoryMarshal.GetReference(y);
        var accf = Vector256<float>.Zero;
        float accum1 = 0;
        for (int i = 0; i < nb; i++)
        {
            ref byte xb = ref Unsafe.Add(ref xr, i * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref yr, i * Iq2Dot.Q8KBytes);
            ref byte q8 = ref Unsafe.Add(ref yb, 4);
            ref byte bsums = ref Unsafe.Add(ref yb, 260);
            var sumi1 = Vector256<int>.Zero;
            var sumi2 = Vector256<int>.Zero;
            int sumd = 0;
            for (int ib = 0; ib < QK_K / 32; ib += 2)
            {
                uint qh = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xb, 34 + 2 * ib));
                sumi1 += SubBlock(ref g, ref Unsafe.Add(ref xb, 2 + 4 * ib), qh & 0xffff, ref Unsafe.Add(ref q8, 32 * ib));
                sumi2 += SubBlock(ref g, ref Unsafe.Add(ref xb, 6 + 4 * ib), qh >> 16, ref Unsafe.Add(ref q8, 32 * ib + 32));
                // The delta terms through the block sums of 16: sign (bit 15) times scale times the sum of 32 q8.
                ulong bs = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref bsums, 4 * ib));
                int bs1 = (short)bs + (short)(bs >> 16), bs2 = (short)(bs >> 32) + (short)(bs >> 48);
                sumd += bs1 * (1 - (int)((qh >> 14) & 2)) * (int)(2 * ((qh >> 12) & 7) + 1)
                      + bs2 * (1 - (int)((qh >> 30) & 2)) * (int)(2 * ((qh >> 28) & 7) + 1);
            }
            float d = Unsafe.ReadUnaligned<float>(ref yb) * Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(ref xb));
            accf = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi1 + sumi2), accf);
            accum1 = MathF.FusedMultiplyAdd(d, sumd, accum1);
        }
        return Iq2Dot.HorizontalSum(accf) + Delta * accum1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SubBlock(ref ulong g, ref byte qsr, uint qh, ref byte q8)
    {
        uint qs = Unsafe.ReadUnaligned<uint>(ref qsr);
        var gv = Vector256.Create(
            Unsafe.Add(ref g, (qs & 255) | ((qh << 8) & 0x700)), Unsafe.Add(ref g, ((qs >> 8) & 255) | ((qh << 5) & 0x700)),
            Unsafe.Add(ref g, ((qs >> 16) & 255) | ((qh << 2) & 0x700)), Unsafe.Add(ref g, (qs >> 24) | ((qh >> 1) & 0x700))).AsSByte();
        var q8v = Vector256.LoadUnsafe(ref q8).AsSByte();
        var dot = Avx2.MultiplyAddAdjacent(Avx2.Abs(gv), Avx2.Sign(q8v, gv));
        return Avx2.MultiplyAddAdjacent(dot, Vector256.Create((short)(2 * ((qh >> 12) & 7) + 1)));
    }
}
