using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class TQ2_0Kernel
{
    private static unsafe float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        var m3 = Vector256.Create((byte)3);
        var acc = Vector256<float>.Zero;
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            for (int i = 0; i < nb; i++)
            {
                byte* xb = px + i * BlockBytes;
                byte* yb = py + i * ActivationBlocks.Q8_KBytes;
                sbyte* qy = (sbyte*)yb + ActivationBlocks.Q8_KQs;
                var sum0 = Vector256<short>.Zero;
                var sum1 = Vector256<short>.Zero;
                for (int h = 0; h < 2; h++)
                {
                    var q = Avx.LoadVector256(xb + 32 * h).AsUInt16();
                    var c0 = q.AsByte() & m3;
                    var c1 = Avx2.ShiftRightLogical(q, 2).AsByte() & m3;
                    var c2 = Avx2.ShiftRightLogical(q, 4).AsByte() & m3;
                    var c3 = Avx2.ShiftRightLogical(q, 6).AsByte() & m3;
                    sbyte* yh = qy + 128 * h;
                    sum0 += Avx2.MultiplyAddAdjacent(c0, Avx.LoadVector256(yh)) + Avx2.MultiplyAddAdjacent(c1, Avx.LoadVector256(yh + 32));
                    sum1 += Avx2.MultiplyAddAdjacent(c2, Avx.LoadVector256(yh + 64)) + Avx2.MultiplyAddAdjacent(c3, Avx.LoadVector256(yh + 96));
                }
                var bsums = Avx.LoadVector256((short*)(yb + ActivationBlocks.Q8_KBsums));
                var lanes = Avx2.MultiplyAddAdjacent(sum0 + sum1 - bsums, Vector256.Create((short)1));
                var d = Vector256.Create(*(float*)yb * F16Kernel.ToFloat(*(ushort*)(xb + 64)));
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lanes), d, acc);
            }
        }
        return Lanes.Hsum8(acc);
    }

    // The whole block's 64 code bytes in one register: the lower half is weights 0..127, the upper 128..255. The
    // 16-bit lane sums of the two halves add up to the AVX2 kernel's (exactly: they never overflow).
    private static unsafe float VecDotAvx512(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        var m3 = Vector512.Create((byte)3);
        var acc = Vector256<float>.Zero;
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            for (int i = 0; i < nb; i++)
            {
                byte* xb = px + i * BlockBytes;
                byte* yb = py + i * ActivationBlocks.Q8_KBytes;
                sbyte* qy = (sbyte*)yb + ActivationBlocks.Q8_KQs;
                var q = Vector512.Load(xb).AsUInt16();
                var sum = Avx512BW.MultiplyAddAdjacent(q.AsByte() & m3, Vector512.Create(Avx.LoadVector256(qy), Avx.LoadVector256(qy + 128)));
                sum += Avx512BW.MultiplyAddAdjacent(Avx512BW.ShiftRightLogical(q, 2).AsByte() & m3, Vector512.Create(Avx.LoadVector256(qy + 32), Avx.LoadVector256(qy + 160)));
                sum += Avx512BW.MultiplyAddAdjacent(Avx512BW.ShiftRightLogical(q, 4).AsByte() & m3, Vector512.Create(Avx.LoadVector256(qy + 64), Avx.LoadVector256(qy + 192)));
                sum += Avx512BW.MultiplyAddAdjacent(Avx512BW.ShiftRightLogical(q, 6).AsByte() & m3, Vector512.Create(Avx.LoadVector256(qy + 96), Avx.LoadVector256(qy + 224)));
                var bsums = Avx.LoadVector256((short*)(yb + ActivationBlocks.Q8_KBsums));
                var lanes = Avx2.MultiplyAddAdjacent(sum.GetLower() + sum.GetUpper() - bsums, Vector256.Create((short)1));
                var d = Vector256.Create(*(float*)yb * F16Kernel.ToFloat(*(ushort*)(xb + 64)));
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lanes), d, acc);
            }
        }
        return Lanes.Hsum8(acc);
    }
}
