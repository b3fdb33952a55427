using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q2_K
{
    /// <summary>Decode-once tiles (<see cref="DecodedTiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        DecodedTiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IDecodedBlock
    {
        public static int BlockBytes => Q2_K.BlockBytes;
        // Per 32-quant chunk: 2-bit values and the int16 scales of its two groups (16 vectors); then the mins and dmin.
        public static int Vectors => 18;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Half(ref xb, DOffset);

        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            Vector256<byte> m3 = Vector256.Create((byte)3);
            Vector128<byte> m4 = Vector128.Create((byte)0xF);
            Vector128<byte> minsAndScales = Vector128.LoadUnsafe(ref Unsafe.Add(ref xb, ScalesOffset));
            Vector128<byte> mins8 = Sse2.And(Sse2.ShiftRightLogical(minsAndScales.AsUInt16(), 4).AsByte(), m4);
            Vector256<short> allScales = Avx2.ConvertToVector256Int16(Sse2.And(minsAndScales, m4).AsSByte());
            for (int j = 0; j < QK / 128; ++j)
            {
                Vector128<short> half = j == 0 ? allScales.GetLower() : allScales.GetUpper();
                Vector256<sbyte> scales = Vector256.Create(half, half).AsSByte();
                Vector256<byte> q2bits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 8 * j);
                v = Avx2.And(q2bits, m3);
                Unsafe.Add(ref v, 2) = Avx2.And(Avx2.ShiftRightLogical(q2bits.AsUInt16(), 2).AsByte(), m3);
                Unsafe.Add(ref v, 4) = Avx2.And(Avx2.ShiftRightLogical(q2bits.AsUInt16(), 4).AsByte(), m3);
                Unsafe.Add(ref v, 6) = Avx2.And(Avx2.ShiftRightLogical(q2bits.AsUInt16(), 6).AsByte(), m3);
                for (int p = 0; p < 4; p++)
                    Unsafe.Add(ref v, 2 * p + 1) = Avx2.Shuffle(scales, QuantSimd.ScaleShuffle16(p)).AsByte();
            }
            Unsafe.Add(ref w, 16) = Avx2.ConvertToVector256Int16(mins8.AsSByte()).AsByte();
            Unsafe.Add(ref w, 17) = Vector256.Create(Half(ref xb, DminOffset)).AsByte();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(ref Vector256<byte> w, ref byte q8) => Q4_K.ScaledNibbleDot(ref w, ref q8);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dot4(ref Vector256<byte> w, ref byte q8, int yStride, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3) =>
            DecodedTiles.ScaledDot4(ref w, ref q8, yStride, out s0, out s1, out s2, out s3);

        public static bool HasPrologue => true;

        // The mins go into the main accumulator before the block's lanes: dmin = -d_y * dmin_x times mins x group sums.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Prologue(ref Vector256<byte> w, ref byte yb, float yd, Vector256<float> acc)
        {
            float dmin = -yd * Unsafe.Add(ref w, 17).AsSingle().ToScalar();
            Vector256<short> bsums = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, Q8_K.BsumsOffset)).AsInt16();
            Vector256<int> prod = Avx2.MultiplyAddAdjacent(Unsafe.Add(ref w, 16).AsInt16(), bsums);
            return Fma.MultiplyAdd(Vector256.Create(dmin), Avx.ConvertToVector256Single(prod), acc);
        }

        public static bool HasExtra => false;

        public static Vector256<float> Extra(ref Vector256<byte> w, ref byte yb, float d, float yd, Vector256<float> extra) => extra;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Finish(Vector256<float> acc, Vector256<float> extra) => QuantSimd.HorizontalSum(acc);
    }
}
