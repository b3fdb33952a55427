using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q3_K
{
    /// <summary>Decode-once tiles (<see cref="DecodedTiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        DecodedTiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IDecodedBlock
    {
        public static int BlockBytes => Q3_K.BlockBytes;
        public static int Vectors => 24;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Half(ref xb, DOffset);

        // Per 32-quant chunk, as VecDotAvx2 forms them: the 2-bit values, 4 where the high bit is clear, and the
        // int16 scales of its two groups of 16.
        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            Vector256<byte> m3 = Vector256.Create((byte)3);
            UnpackScales(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref xb, ScalesOffset), 12), out uint a0, out uint a1, out uint a2, out uint a3);
            Vector256<short> allScales = Avx2.ConvertToVector256Int16(Sse2.Subtract(Vector128.Create(a0, a1, a2, a3).AsSByte(), Vector128.Create((sbyte)32)));
            Vector256<byte> hbits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, HmaskOffset));
            for (int j = 0; j < QK / 128; ++j)
            {
                Vector128<short> half = j == 0 ? allScales.GetLower() : allScales.GetUpper();
                Vector256<sbyte> scales = Vector256.Create(half, half).AsSByte();
                Vector256<byte> q3bits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
                Chunk(ref w, 4 * j, Avx2.And(q3bits, m3), hbits, scales, 0);
                Chunk(ref w, 4 * j + 1, Avx2.And(Avx2.ShiftRightLogical(q3bits.AsUInt16(), 2).AsByte(), m3), hbits, scales, 1);
                Chunk(ref w, 4 * j + 2, Avx2.And(Avx2.ShiftRightLogical(q3bits.AsUInt16(), 4).AsByte(), m3), hbits, scales, 2);
                Chunk(ref w, 4 * j + 3, Avx2.And(Avx2.ShiftRightLogical(q3bits.AsUInt16(), 6).AsByte(), m3), hbits, scales, 3);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Chunk(ref Vector256<byte> w, int bit, Vector256<byte> q3l, Vector256<byte> hbits, Vector256<sbyte> scales, int k)
        {
            ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * bit);
            v = q3l;
            Vector256<byte> clear = Avx2.CompareEqual(Avx2.And(hbits, Vector256.Create((byte)(1 << bit))), Vector256<byte>.Zero);
            Unsafe.Add(ref v, 1) = Avx2.And(clear, Vector256.Create((byte)4));
            Unsafe.Add(ref v, 2) = Avx2.Shuffle(scales, QuantSimd.ScaleShuffle16(k)).AsByte();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(ref Vector256<byte> w, ref byte q8)
        {
            Vector256<int> sum = Vector256<int>.Zero;
            for (int c = 0; c < 8; c++)
            {
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * c);
                Vector256<sbyte> q8k = Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32 * c)).AsSByte();
                Vector256<short> p16 = Avx2.Subtract(Avx2.MultiplyAddAdjacent(v, q8k), Avx2.MultiplyAddAdjacent(Unsafe.Add(ref v, 1), q8k));
                sum = Avx2.Add(sum, Avx2.MultiplyAddAdjacent(Unsafe.Add(ref v, 2).AsInt16(), p16));
            }
            return sum;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Finish(Vector256<float> acc) => QuantSimd.HorizontalSum(acc);
    }
}
