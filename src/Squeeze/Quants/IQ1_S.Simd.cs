using System.Buffers.Binary;
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
        var accf = Vector256<float>.Zero;
        float accum1 = 0;
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            ref byte xr = ref MemoryMarshal.GetReference(xb);
            var yb = y.Slice(i * Iq2Dot.Q8KBytes, Iq2Dot.Q8KBytes);
            ref byte q8 = ref MemoryMarshal.GetReference(yb.Slice(4));
            ref byte bsums = ref MemoryMarshal.GetReference(yb.Slice(260));
            var sumi = Vector256<int>.Zero;
            int sumi1 = 0;
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                uint qs = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xr, 2 + 4 * ib));
                uint qh = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref xr, 34 + 2 * ib));
                var gv = Vector256.Create(
                    Unsafe.Add(ref g, (qs & 255) | ((qh << 8) & 0x700)), Unsafe.Add(ref g, ((qs >> 8) & 255) | ((qh << 5) & 0x700)),
                    Unsafe.Add(ref g, ((qs >> 16) & 255) | ((qh << 2) & 0x700)), Unsafe.Add(ref g, (qs >> 24) | ((qh >> 1) & 0x700))).AsSByte();
                var q8v = Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32 * ib)).AsSByte();
                var dot = Avx2.MultiplyAddAdjacent(Avx2.Abs(gv), Avx2.Sign(q8v, gv));
                int ls = (int)(2 * ((qh >> 12) & 7) + 1);
                sumi += Avx2.MultiplyAddAdjacent(dot, Vector256.Create((short)ls));
                int bs = Unsafe.ReadUnaligned<short>(ref Unsafe.Add(ref bsums, 4 * ib)) + Unsafe.ReadUnaligned<short>(ref Unsafe.Add(ref bsums, 4 * ib + 2));
                sumi1 += bs * ((qh & 0x8000) != 0 ? -1 : 1) * ls;
            }
            float d = BinaryPrimitives.ReadSingleLittleEndian(yb) * Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb));
            accf = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), accf);
            accum1 = MathF.FusedMultiplyAdd(d, sumi1, accum1);
        }
        return Iq2Dot.HorizontalSum(accf) + Delta * accum1;
    }
}
