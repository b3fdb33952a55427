using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q6_K
{
    // ggml's AVX2 layout: unsigned 6-bit values (0..63) times Q8_K bytes, scaled per group of 16; the -32 offset is
    // taken off once per block as 32 * sum(scale * group sum of Q8_K).
    // The high two bits of chunks 0 and 1 (bits 0-1 and 2-3 of qh) moved to bits 4-5, in one 512-bit vector; and
    // of chunks 2 and 3 (bits 4-5 and 6-7).
    private static readonly Vector512<ushort> HighMask01 = Vector512.Create(Vector256.Create((ushort)0x0303), Vector256.Create((ushort)0x0C0C));
    private static readonly Vector512<ushort> HighShift01 = Vector512.Create(Vector256.Create((ushort)4), Vector256.Create((ushort)2));
    private static readonly Vector512<ushort> HighMask23 = Vector512.Create(Vector256.Create((ushort)0x3030), Vector256.Create((ushort)0xC0C0));
    private static readonly Vector512<ushort> HighShift23 = Vector512.Create(Vector256.Create((ushort)0), Vector256.Create((ushort)2));

    private static float VecDotAvx2(ref byte x, ref byte y, int nb)
    {
        bool wide = QuantSimd.UseAvx512;
        Vector256<byte> m3 = Vector256.Create((byte)3);
        Vector256<byte> m15 = Vector256.Create((byte)15);
        Vector256<byte> m12 = Vector256.Create((byte)12);
        Vector256<byte> m48 = Vector256.Create((byte)48);
        Vector256<byte> m192 = Vector256.Create((byte)0xC0);
        Vector256<float> acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; ++i)
        {
            ref byte xb = ref Unsafe.Add(ref x, i * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref y, i * Q8_K.BlockBytes);
            float d = Unsafe.ReadUnaligned<float>(ref yb) * Half(ref xb, DOffset);

            Vector256<short> q8sums = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, Q8_K.BsumsOffset)).AsInt16();
            Vector128<sbyte> scales = Vector128.LoadUnsafe(ref Unsafe.Add(ref xb, ScalesOffset)).AsSByte();
            Vector256<short> scales16 = Avx2.ConvertToVector256Int16(scales);
            Vector256<int> q8sclsub = Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(q8sums, scales16), 5);

            Vector256<int> sumi = Vector256<int>.Zero;
            if (wide)
            {
                // Chunks (0, 1) and (2, 3) of each half in one vector each; same lane totals as the loop below.
                Vector512<int> sumw = Vector512<int>.Zero;
                for (int j = 0; j < QK / 128; ++j)
                {
                    int is_ = 4 * j;
                    Vector512<byte> q4bits = Vector512.LoadUnsafe(ref Unsafe.Add(ref xb, QlOffset + 64 * j));
                    Vector256<byte> h = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QhOffset + 32 * j));
                    Vector512<ushort> hh = Vector512.Create(h, h).AsUInt16();
                    Vector512<byte> q4h01 = Avx512BW.ShiftLeftLogicalVariable(hh & HighMask01, HighShift01).AsByte();
                    Vector512<byte> q4h23 = Avx512BW.ShiftRightLogicalVariable(hh & HighMask23, HighShift23).AsByte();
                    Vector512<byte> q401 = (q4bits & Vector512.Create((byte)15)) | q4h01;
                    Vector512<byte> q423 = (Avx512BW.ShiftRightLogical(q4bits.AsUInt16(), 4).AsByte() & Vector512.Create((byte)15)) | q4h23;
                    ref byte q8 = ref Unsafe.Add(ref yb, Q8_K.QsOffset + 128 * j);
                    Vector512<sbyte> q801 = Vector512.LoadUnsafe(ref q8).AsSByte();
                    Vector512<sbyte> q823 = Vector512.LoadUnsafe(ref Unsafe.Add(ref q8, 64)).AsSByte();
                    Vector512<short> scale01 = Avx512BW.ConvertToVector512Int16(Vector256.Create(
                        Ssse3.Shuffle(scales, QuantSimd.ScaleShuffleBytes(is_ + 0)), Ssse3.Shuffle(scales, QuantSimd.ScaleShuffleBytes(is_ + 1))));
                    Vector512<short> scale23 = Avx512BW.ConvertToVector512Int16(Vector256.Create(
                        Ssse3.Shuffle(scales, QuantSimd.ScaleShuffleBytes(is_ + 2)), Ssse3.Shuffle(scales, QuantSimd.ScaleShuffleBytes(is_ + 3))));
                    sumw = Avx512F.Add(sumw, Avx512BW.MultiplyAddAdjacent(scale01, Avx512BW.MultiplyAddAdjacent(q401, q801)));
                    sumw = Avx512F.Add(sumw, Avx512BW.MultiplyAddAdjacent(scale23, Avx512BW.MultiplyAddAdjacent(q423, q823)));
                }
                sumi = QuantSimd.Fold(sumw);
            }
            else for (int j = 0; j < QK / 128; ++j)
            {
                int is_ = 4 * j;
                Vector256<byte> q4bits1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QlOffset + 64 * j));
                Vector256<byte> q4bits2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QlOffset + 64 * j + 32));
                Vector256<byte> q4bitsH = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QhOffset + 32 * j));

                Vector256<byte> q4h0 = Avx2.ShiftLeftLogical(Avx2.And(q4bitsH, m3).AsUInt16(), 4).AsByte();
                Vector256<byte> q4h1 = Avx2.ShiftLeftLogical(Avx2.And(q4bitsH, m12).AsUInt16(), 2).AsByte();
                Vector256<byte> q4h2 = Avx2.And(q4bitsH, m48);
                Vector256<byte> q4h3 = Avx2.ShiftRightLogical(Avx2.And(q4bitsH, m192).AsUInt16(), 2).AsByte();

                Vector256<byte> q40 = Avx2.Or(Avx2.And(q4bits1, m15), q4h0);
                Vector256<byte> q41 = Avx2.Or(Avx2.And(q4bits2, m15), q4h1);
                Vector256<byte> q42 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(q4bits1.AsUInt16(), 4).AsByte(), m15), q4h2);
                Vector256<byte> q43 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(q4bits2.AsUInt16(), 4).AsByte(), m15), q4h3);

                ref byte q8 = ref Unsafe.Add(ref yb, Q8_K.QsOffset + 128 * j);
                Vector256<int> p0 = Chunk(q40, ref q8, scales, is_ + 0);
                Vector256<int> p1 = Chunk(q41, ref Unsafe.Add(ref q8, 32), scales, is_ + 1);
                Vector256<int> p2 = Chunk(q42, ref Unsafe.Add(ref q8, 64), scales, is_ + 2);
                Vector256<int> p3 = Chunk(q43, ref Unsafe.Add(ref q8, 96), scales, is_ + 3);
                sumi = Avx2.Add(sumi, Avx2.Add(p0, p1));
                sumi = Avx2.Add(sumi, Avx2.Add(p2, p3));
            }
            sumi = Avx2.Subtract(sumi, q8sclsub);
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Chunk(Vector256<byte> q, ref byte q8, Vector128<sbyte> scales, int s)
    {
        Vector256<short> p16 = Avx2.MultiplyAddAdjacent(q, Vector256.LoadUnsafe(ref q8).AsSByte());
        Vector256<short> scale = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(scales, QuantSimd.ScaleShuffleBytes(s)));
        return Avx2.MultiplyAddAdjacent(scale, p16);
    }
}
