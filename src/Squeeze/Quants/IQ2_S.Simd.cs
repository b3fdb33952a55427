using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ2_S
{
    // AVX2, also used at the AVX-512 level (the grid rows are gathered with scalar loads either way).
    // One 32-weight sub-block per vector, two per step; lanes 0..3 take the first 4-bit scale, lanes 4..7 the second.
    private static readonly Vector256<byte> SignByteIndex = Vector256.Create(
        (byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    private static readonly Vector256<byte> SignBitMask = Vector256.Create(
        (byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);

    private static float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        ref ulong g = ref MemoryMarshal.GetArrayDataReference(Iq2Grids.IQ2S);
        ref byte xr = ref MemoryMarshal.GetReference(x);
        ref byte yr = ref MemoryMarshal.GetReference(y);
        var accf = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            ref byte xb = ref Unsafe.Add(ref xr, i * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref yr, i * Iq2Dot.Q8KBytes);
            float d = Fp16.ToFloat(Unsafe.ReadUnaligned<ushort>(ref xb)) * Unsafe.ReadUnaligned<float>(ref yb);
            ref byte q8 = ref Unsafe.Add(ref yb, 4);
            var sumi1 = Vector256<int>.Zero;
            var sumi2 = Vector256<int>.Zero;
            for (int ib32 = 0; ib32 < QK_K / 32; ib32 += 2)
            {
                sumi1 += SubBlock(ref g, ref xb, ib32, ref Unsafe.Add(ref q8, 32 * ib32));
                sumi2 += SubBlock(ref g, ref xb, ib32 + 1, ref Unsafe.Add(ref q8, 32 * ib32 + 32));
            }
            accf = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi1 + sumi2), accf);
        }
        return 0.125f * Iq2Dot.HorizontalSum(accf);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SubBlock(ref ulong g, ref byte xb, int ib32, ref byte q8)
    {
        uint qs = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xb, 2 + 4 * ib32));
        uint signs = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xb, 34 + 4 * ib32));
        uint qh = Unsafe.Add(ref xb, 66 + ib32);
        uint sc = Unsafe.Add(ref xb, 74 + ib32);
        var gv = Vector256.Create(
            Unsafe.Add(ref g, (qs & 255) | ((qh << 8) & 0x300)), Unsafe.Add(ref g, ((qs >> 8) & 255) | ((qh << 6) & 0x300)),
            Unsafe.Add(ref g, ((qs >> 16) & 255) | ((qh << 4) & 0x300)), Unsafe.Add(ref g, (qs >> 24) | ((qh << 2) & 0x300))).AsByte();
        // Byte k of the sign word for weights 8k..8k+7, each weight's bit tested into 0xFF/0 (as ggml does).
        var bits = Avx2.Shuffle(Vector256.Create(signs).AsByte(), SignByteIndex) & SignBitMask;
        var s2 = Vector256.Equals(bits, SignBitMask).AsSByte();
        var q8v = Vector256.LoadUnsafe(ref q8).AsSByte();
        var dot = Avx2.MultiplyAddAdjacent(gv, (q8v ^ s2) - s2);
        return Avx2.MultiplyAddAdjacent(dot, Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Iq2Dot.NibbleScales), (int)sc));
    }
}
