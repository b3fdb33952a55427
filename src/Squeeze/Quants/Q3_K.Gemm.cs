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
        public static void Dot4(ref Vector256<byte> w, ref byte q8, int yStride, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3)
        {
            s0 = s1 = s2 = s3 = Vector256<int>.Zero;
            ref byte q8b = ref Unsafe.Add(ref q8, yStride), q8c = ref Unsafe.Add(ref q8, 2 * yStride), q8d = ref Unsafe.Add(ref q8, 3 * yStride);
            for (int c = 0; c < 8; c++)
            {
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * c);
                Vector256<byte> lo = v, hi = Unsafe.Add(ref v, 1);
                Vector256<short> m = Unsafe.Add(ref v, 2).AsInt16();
                s0 = Avx2.Add(s0, Chunk(lo, hi, m, ref Unsafe.Add(ref q8, 32 * c)));
                s1 = Avx2.Add(s1, Chunk(lo, hi, m, ref Unsafe.Add(ref q8b, 32 * c)));
                s2 = Avx2.Add(s2, Chunk(lo, hi, m, ref Unsafe.Add(ref q8c, 32 * c)));
                s3 = Avx2.Add(s3, Chunk(lo, hi, m, ref Unsafe.Add(ref q8d, 32 * c)));
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<int> Chunk(Vector256<byte> lo, Vector256<byte> hi, Vector256<short> m, ref byte q8)
        {
            Vector256<sbyte> q8k = Vector256.LoadUnsafe(ref q8).AsSByte();
            return Avx2.MultiplyAddAdjacent(m, Avx2.Subtract(Avx2.MultiplyAddAdjacent(lo, q8k), Avx2.MultiplyAddAdjacent(hi, q8k)));
        }

        public static bool HasExtra => false;

        public static Vector256<float> Extra(ref Vector256<byte> w, ref byte yb, float d, float yd, Vector256<float> extra) => extra;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Finish(Vector256<float> acc, Vector256<float> extra) => QuantSimd.HorizontalSum(acc);
    }
}
