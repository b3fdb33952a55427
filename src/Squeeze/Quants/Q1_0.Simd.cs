using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class Q1_0Kernel
{
    private static readonly Vector256<byte> ByteShuffle = Vector256.Create(
        (byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);

    private static readonly Vector256<byte> BitMasks = Vector256.Create(
        (byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);

    /// <summary>One bit per weight, set where x &gt;= 0 (so -0 sets it and NaN does not), 8 weights per byte.</summary>
    private static void SignBits(ReadOnlySpan<float> x, Span<byte> qs)
    {
        for (int b = 0; b < QK / 8; b++)
            qs[b] = (byte)Vector256.GreaterThanOrEqual(Vector256.Create(x.Slice(b * 8, 8)), Vector256<float>.Zero).ExtractMostSignificantBits();
    }

    private static unsafe float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        var ones8 = Vector256.Create((byte)1);
        var ones16 = Vector256.Create((short)1);
        var shuffle = ByteShuffle;
        var masks = BitMasks;
        var acc = Vector256<float>.Zero;
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            for (int ib = 0; ib < nb; ib++)
            {
                byte* xb = px + ib * BlockBytes;
                float d0 = F16Kernel.ToFloat(*(ushort*)xb);
                Vector256<float> accBlock = default;
                for (int k = 0; k < 4; k++)
                {
                    byte* yb = py + (ib * 4 + k) * ActivationBlocks.Q8_0Bytes;
                    var qy = Avx.LoadVector256(yb + 2).AsSByte();
                    var bits = Avx2.Shuffle(Vector256.Create(*(uint*)(xb + 2 + 4 * k)).AsByte(), shuffle);
                    var negate = Avx2.CompareEqual(Avx2.And(bits, masks), Vector256<byte>.Zero).AsSByte();
                    var sy = Avx2.Subtract(Avx2.Xor(qy, negate), negate);
                    var s32 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ones8, sy), ones16);
                    var dy = Vector256.Create(F16Kernel.ToFloat(*(ushort*)yb));
                    accBlock = k == 0 ? dy * Avx.ConvertToVector256Single(s32) : Fma.MultiplyAdd(dy, Avx.ConvertToVector256Single(s32), accBlock);
                }
                acc = Fma.MultiplyAdd(Vector256.Create(d0), accBlock, acc);
            }
        }
        return Lanes.Hsum8(acc);
    }

    // Two Q8_0 blocks per register (K = 0, 1 and K = 2, 3); the float chain per block is the AVX2 kernel's.
    private static unsafe float VecDotAvx512(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        var ones8 = Vector512.Create((byte)1);
        var ones16 = Vector512.Create((short)1);
        var shuffle = Vector512.Create(ByteShuffle, ByteShuffle);
        var masks = Vector512.Create(BitMasks, BitMasks);
        var acc = Vector256<float>.Zero;
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            for (int ib = 0; ib < nb; ib++)
            {
                byte* xb = px + ib * BlockBytes;
                byte* yb = py + ib * 4 * ActivationBlocks.Q8_0Bytes;
                var accBlock = Vector256<float>.Zero;
                for (int k = 0; k < 4; k += 2)
                {
                    byte* ya = yb + k * ActivationBlocks.Q8_0Bytes, yc = ya + ActivationBlocks.Q8_0Bytes;
                    var qy = Vector512.Create(Avx.LoadVector256((sbyte*)ya + 2), Avx.LoadVector256((sbyte*)yc + 2));
                    var words = Vector512.Create(Vector256.Create(*(uint*)(xb + 2 + 4 * k)), Vector256.Create(*(uint*)(xb + 6 + 4 * k))).AsByte();
                    var negate = Vector512.Equals(Avx512BW.Shuffle(words, shuffle) & masks, Vector512<byte>.Zero).AsSByte();
                    var sy = (qy ^ negate) - negate;
                    var f = Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(ones8, sy), ones16));
                    var dya = Vector256.Create(F16Kernel.ToFloat(*(ushort*)ya));
                    var dyc = Vector256.Create(F16Kernel.ToFloat(*(ushort*)yc));
                    accBlock = k == 0 ? dya * f.GetLower() : Fma.MultiplyAdd(dya, f.GetLower(), accBlock);
                    accBlock = Fma.MultiplyAdd(dyc, f.GetUpper(), accBlock);
                }
                acc = Fma.MultiplyAdd(Vector256.Create(F16Kernel.ToFloat(*(ushort*)xb)), accBlock, acc);
            }
        }
        return Lanes.Hsum8(acc);
    }
}
