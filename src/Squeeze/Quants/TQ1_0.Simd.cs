using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class TQ1_0Kernel
{
    // Bytes times 9 modulo 256 (AVX2 has no 8-bit multiply): a 16-bit shift by 3 with the bits that crossed from
    // the neighbouring byte masked off, plus the byte itself.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Times9(Vector256<byte> v) =>
        (Avx2.ShiftLeftLogical(v.AsUInt16(), 3).AsByte() & Vector256.Create((byte)0xF8)) + v;

    /// <summary>
    /// The top trit of each byte, ((v * 3) >> 8), by the halving-average identity ggml uses:
    /// avg(v - 1, avg(v - 1, 0)) = (v + v / 2) / 2, whose top two bits are that trit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> TopTrit(Vector256<byte> v)
    {
        var a = Avx2.SubtractSaturate(v, Vector256.Create((byte)1));
        a = Avx2.Average(a, Avx2.Average(a, Vector256<byte>.Zero));
        return Avx2.ShiftRightLogical(a.AsUInt16(), 6).AsByte() & Vector256.Create((byte)3);
    }

    private static unsafe float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        var acc = Vector256<float>.Zero;
        var qhMultipliers = Vector256.Create((short)1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27);
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            for (int i = 0; i < nb; i++)
            {
                byte* xb = px + i * BlockBytes;
                byte* yb = py + i * ActivationBlocks.Q8_KBytes;
                sbyte* qy = (sbyte*)yb + ActivationBlocks.Q8_KQs;

                // Weights 0..159: five trits of bytes 0..31, one 32-byte chunk per trit.
                var q0 = Avx.LoadVector256(xb);
                var q1 = q0 + q0 + q0;
                var q2 = Times9(q0);
                var q3 = Times9(q1);
                var q4 = Times9(q2);
                var sum = Avx2.MultiplyAddAdjacent(TopTrit(q0), Avx.LoadVector256(qy));
                sum += Avx2.MultiplyAddAdjacent(TopTrit(q1), Avx.LoadVector256(qy + 32));
                sum += Avx2.MultiplyAddAdjacent(TopTrit(q2), Avx.LoadVector256(qy + 64));
                sum += Avx2.MultiplyAddAdjacent(TopTrit(q3), Avx.LoadVector256(qy + 96));
                sum += Avx2.MultiplyAddAdjacent(TopTrit(q4), Avx.LoadVector256(qy + 128));

                // Weights 160..239: five trits of bytes 32..47 (16 bytes per trit); 240..255: four trits of qh.
                var r0 = Vector256.Create(Sse2.LoadVector128(xb + 32), Sse2.LoadVector128(xb + 32));
                var r1 = r0 + r0 + r0;                       // halves: trit 0 | trit 1 after the multiplies below
                var r01 = Avx2.Blend(r0.AsInt32(), r1.AsInt32(), 0xF0).AsByte();
                var r9 = Times9(r01);                        // halves: *9 | *27
                var r81 = Times9(Times9(r0));
                var qh = Avx2.ConvertToVector256Int16(Vector128.Create(*(uint*)(xb + 48)).AsByte());
                var qh3 = Avx2.MultiplyLow(qh, qhMultipliers) & Vector256.Create((short)0xFF);
                var qh8 = Sse2.PackUnsignedSaturate(qh3.GetLower(), qh3.GetUpper());
                var r45 = Vector256.Create(r81.GetLower(), qh8);
                sum += Avx2.MultiplyAddAdjacent(TopTrit(r01), Avx.LoadVector256(qy + 160));
                sum += Avx2.MultiplyAddAdjacent(TopTrit(r9), Avx.LoadVector256(qy + 192));
                sum += Avx2.MultiplyAddAdjacent(TopTrit(r45), Avx.LoadVector256(qy + 224));

                var bsums = Avx.LoadVector256((short*)(yb + ActivationBlocks.Q8_KBsums));
                var lanes = Avx2.MultiplyAddAdjacent(sum - bsums, Vector256.Create((short)1));
                var d = Vector256.Create(*(float*)yb * F16Kernel.ToFloat(*(ushort*)(xb + 52)));
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lanes), d, acc);
            }
        }
        return Lanes.Hsum8(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Times9(Vector512<byte> v) =>
        (Avx512BW.ShiftLeftLogical(v.AsUInt16(), 3).AsByte() & Vector512.Create((byte)0xF8)) + v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> TopTrit(Vector512<byte> v)
    {
        var a = Avx512BW.SubtractSaturate(v, Vector512.Create((byte)1));
        a = Avx512BW.Average(a, Avx512BW.Average(a, Vector512<byte>.Zero));
        return Avx512BW.ShiftRightLogical(a.AsUInt16(), 6).AsByte() & Vector512.Create((byte)3);
    }

    // The same trits as VecDotAvx2, arranged so that each 64-byte group lines up with 64 consecutive activations:
    // [x1 | x3] of bytes 0..31, [x9 | x27], [x81 | bytes 32..47 x1 and x3], [bytes 32..47 x9 and x27 | x81 and qh].
    private static unsafe float VecDotAvx512(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        var acc = Vector256<float>.Zero;
        var qhMultipliers = Vector256.Create((short)1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27);
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            for (int i = 0; i < nb; i++)
            {
                byte* xb = px + i * BlockBytes;
                byte* yb = py + i * ActivationBlocks.Q8_KBytes;
                sbyte* qy = (sbyte*)yb + ActivationBlocks.Q8_KQs;

                var q0 = Avx.LoadVector256(xb);
                var a = Vector512.Create(q0, q0 + q0 + q0);
                var b = Times9(a);
                var r0 = Vector256.Create(Sse2.LoadVector128(xb + 32), Sse2.LoadVector128(xb + 32));
                var r01 = Avx2.Blend(r0.AsInt32(), (r0 + r0 + r0).AsInt32(), 0xF0).AsByte();
                var c = Vector512.Create(Times9(b).GetLower(), r01);
                var qh = Avx2.ConvertToVector256Int16(Vector128.Create(*(uint*)(xb + 48)).AsByte());
                var qh3 = Avx2.MultiplyLow(qh, qhMultipliers) & Vector256.Create((short)0xFF);
                var qh8 = Sse2.PackUnsignedSaturate(qh3.GetLower(), qh3.GetUpper());
                var d9 = Times9(c.GetUpper());
                var d = Vector512.Create(d9, Vector256.Create(Times9(d9).GetLower(), qh8));

                var sum = Avx512BW.MultiplyAddAdjacent(TopTrit(a), Vector512.Load(qy));
                sum += Avx512BW.MultiplyAddAdjacent(TopTrit(b), Vector512.Load(qy + 64));
                sum += Avx512BW.MultiplyAddAdjacent(TopTrit(c), Vector512.Load(qy + 128));
                sum += Avx512BW.MultiplyAddAdjacent(TopTrit(d), Vector512.Load(qy + 192));

                var bsums = Avx.LoadVector256((short*)(yb + ActivationBlocks.Q8_KBsums));
                var lanes = Avx2.MultiplyAddAdjacent(sum.GetLower() + sum.GetUpper() - bsums, Vector256.Create((short)1));
                var scale = Vector256.Create(*(float*)yb * F16Kernel.ToFloat(*(ushort*)(xb + 52)));
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lanes), scale, acc);
            }
        }
        return Lanes.Hsum8(acc);
    }
}
