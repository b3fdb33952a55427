using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class Q2_0Kernel
{
    // The integer block sum is exact, so any order gives the scalar result. The four 2-bit fields of each byte
    // are split into four byte vectors, then interleaved back into weight order by two rounds of unpacking.
    private static int BlockSumAvx2(ReadOnlySpan<byte> qs, ReadOnlySpan<byte> qy)
    {
        var m3 = Vector128.Create((byte)3);
        var v = Vector128.CreateScalar(BinaryPrimitives.ReadUInt64LittleEndian(qs)).AsByte();
        var f0 = v & m3;
        var f1 = Sse2.ShiftRightLogical(v.AsUInt16(), 2).AsByte() & m3;
        var f2 = Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m3;
        var f3 = Sse2.ShiftRightLogical(v.AsUInt16(), 6).AsByte() & m3;
        var a = Sse2.UnpackLow(f0, f1);
        var b = Sse2.UnpackLow(f2, f3);
        var lo = Sse2.UnpackLow(a.AsUInt16(), b.AsUInt16()).AsByte();
        var hi = Sse2.UnpackHigh(a.AsUInt16(), b.AsUInt16()).AsByte();
        var codes = Vector256.Create(lo, hi);
        var q8 = Vector256.Create(qy[..32]).AsSByte();
        var p = Avx2.MultiplyAddAdjacent(codes, q8) - Avx2.MultiplyAddAdjacent(Vector256.Create((byte)1), q8);
        var s32 = Avx2.MultiplyAddAdjacent(p, Vector256.Create((short)1));
        return Vector256.Sum(s32);
    }

    // Both Q8_0 halves of a block at once: the 64 codes in weight order against the two 32-byte activation runs,
    // the two integer sums read off the lower and upper 256 bits.
    private static (int, int) BlockSumsAvx512(ReadOnlySpan<byte> qs, ReadOnlySpan<byte> qy0, ReadOnlySpan<byte> qy1)
    {
        var m3 = Vector128.Create((byte)3);
        var v = Vector128.Create(qs[..16]);
        var f0 = v & m3;
        var f1 = Sse2.ShiftRightLogical(v.AsUInt16(), 2).AsByte() & m3;
        var f2 = Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m3;
        var f3 = Sse2.ShiftRightLogical(v.AsUInt16(), 6).AsByte() & m3;
        var a0 = Sse2.UnpackLow(f0, f1).AsUInt16();
        var b0 = Sse2.UnpackLow(f2, f3).AsUInt16();
        var a1 = Sse2.UnpackHigh(f0, f1).AsUInt16();
        var b1 = Sse2.UnpackHigh(f2, f3).AsUInt16();
        var codes = Vector512.Create(
            Vector256.Create(Sse2.UnpackLow(a0, b0).AsByte(), Sse2.UnpackHigh(a0, b0).AsByte()),
            Vector256.Create(Sse2.UnpackLow(a1, b1).AsByte(), Sse2.UnpackHigh(a1, b1).AsByte()));
        var q8 = Vector512.Create(Vector256.Create(qy0[..32]), Vector256.Create(qy1[..32])).AsSByte();
        var p = Avx512BW.MultiplyAddAdjacent(codes, q8) - Avx512BW.MultiplyAddAdjacent(Vector512.Create((byte)1), q8);
        var s32 = Avx512BW.MultiplyAddAdjacent(p, Vector512.Create((short)1));
        return (Vector256.Sum(s32.GetLower()), Vector256.Sum(s32.GetUpper()));
    }
}
