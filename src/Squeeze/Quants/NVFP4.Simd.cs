using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

public sealed partial class NVFP4Kernel
{
    private static unsafe float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        var values = MXFP4Kernel.KValues128;
        var ones = Vector256.Create((short)1);
        var acc = Vector256<float>.Zero;
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            for (int ib = 0; ib < nb; ib++)
            {
                byte* xb = px + ib * BlockBytes;
                byte* y0 = py + 2 * ib * ActivationBlocks.Q8_0Bytes, y1 = y0 + ActivationBlocks.Q8_0Bytes;
                // Sub-blocks 0 and 1: low nibbles of bytes 0..15 are weights 0-7 of each, high nibbles weights 8-15;
                // unpacking 64-bit halves puts each sub-block's 16 weights together, in order.
                var (lo01, hi01) = MXFP4Kernel.Decode(Sse2.LoadVector128(xb + 4), values);
                var (lo23, hi23) = MXFP4Kernel.Decode(Sse2.LoadVector128(xb + 20), values);
                var q01 = Vector256.Create(Sse2.UnpackLow(lo01.AsInt64(), hi01.AsInt64()), Sse2.UnpackHigh(lo01.AsInt64(), hi01.AsInt64())).AsSByte();
                var q23 = Vector256.Create(Sse2.UnpackLow(lo23.AsInt64(), hi23.AsInt64()), Sse2.UnpackHigh(lo23.AsInt64(), hi23.AsInt64())).AsSByte();
                var p1 = Avx2.MultiplyAddAdjacent(MXFP4Kernel.MulAdd(q01, Avx.LoadVector256((sbyte*)y0 + 2)), ones);
                var p2 = Avx2.MultiplyAddAdjacent(MXFP4Kernel.MulAdd(q23, Avx.LoadVector256((sbyte*)y1 + 2)), ones);
                float dy0 = F16Kernel.ToFloat(*(ushort*)y0), dy1 = F16Kernel.ToFloat(*(ushort*)y1);
                var scales01 = Vector256.Create(Vector128.Create(UE4M3.ToFloatHalf(xb[0]) * dy0), Vector128.Create(UE4M3.ToFloatHalf(xb[1]) * dy0));
                var scales23 = Vector256.Create(Vector128.Create(UE4M3.ToFloatHalf(xb[2]) * dy1), Vector128.Create(UE4M3.ToFloatHalf(xb[3]) * dy1));
                acc = Fma.MultiplyAdd(scales01, Avx.ConvertToVector256Single(p1), acc);
                acc = Fma.MultiplyAdd(scales23, Avx.ConvertToVector256Single(p2), acc);
            }
        }
        return Lanes.Hsum8(acc);
    }
}
