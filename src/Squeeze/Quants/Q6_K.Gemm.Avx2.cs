using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q6_K
{
    /// <summary>
    /// The AVX2-level tile (<see cref="DecodedTiles{TBlock}"/>): six-bit values and scales unpacked once per block for
    /// every activation row; the lanes (with the -32 offset through the group sums) of <see cref="VecDotAvx2"/>'s
    /// 256-bit loop.
    /// </summary>
    internal struct Avx2Block : IDecodedBlock
    {
        public static int BlockBytes => Q6_K.BlockBytes;
        // Per 32-quant chunk: values and int16 scales (16 vectors); then the sixteen int16 scales.
        public static int Vectors => 17;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Half(ref xb, DOffset);

        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            Vector256<byte> m3 = Vector256.Create((byte)3), m15 = Vector256.Create((byte)15), m12 = Vector256.Create((byte)12);
            Vector256<byte> m48 = Vector256.Create((byte)48), m192 = Vector256.Create((byte)0xC0);
            Vector128<sbyte> scales = Vector128.LoadUnsafe(ref Unsafe.Add(ref xb, ScalesOffset)).AsSByte();
            for (int j = 0; j < QK / 128; ++j)
            {
                Vector256<byte> q4bits1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QlOffset + 64 * j));
                Vector256<byte> q4bits2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QlOffset + 64 * j + 32));
                Vector256<byte> q4bitsH = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QhOffset + 32 * j));
                Vector256<byte> q4h0 = Avx2.ShiftLeftLogical(Avx2.And(q4bitsH, m3).AsUInt16(), 4).AsByte();
                Vector256<byte> q4h1 = Avx2.ShiftLeftLogical(Avx2.And(q4bitsH, m12).AsUInt16(), 2).AsByte();
                Vector256<byte> q4h2 = Avx2.And(q4bitsH, m48);
                Vector256<byte> q4h3 = Avx2.ShiftRightLogical(Avx2.And(q4bitsH, m192).AsUInt16(), 2).AsByte();
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 8 * j);
                v = Avx2.Or(Avx2.And(q4bits1, m15), q4h0);
                Unsafe.Add(ref v, 2) = Avx2.Or(Avx2.And(q4bits2, m15), q4h1);
                Unsafe.Add(ref v, 4) = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(q4bits1.AsUInt16(), 4).AsByte(), m15), q4h2);
                Unsafe.Add(ref v, 6) = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(q4bits2.AsUInt16(), 4).AsByte(), m15), q4h3);
                for (int k = 0; k < 4; k++)
                    Unsafe.Add(ref v, 2 * k + 1) = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(scales, QuantSimd.ScaleShuffleBytes(4 * j + k))).AsByte();
            }
            Unsafe.Add(ref w, 16) = Avx2.ConvertToVector256Int16(scales).AsByte();
        }

        // The chunks' lanes less 32 * (scale times group sum), the offset VecDotAvx2 takes off per block.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(ref Vector256<byte> w, ref byte q8)
        {
            return Avx2.Subtract(Q4_K.ScaledNibbleDot(ref w, ref q8), Offset(ref q8, Unsafe.Add(ref w, 16).AsInt16()));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dot4(ref Vector256<byte> w, ref byte q8, int yStride, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3)
        {
            DecodedTiles.ScaledDot4(ref w, ref q8, yStride, out s0, out s1, out s2, out s3);
            Vector256<short> scales = Unsafe.Add(ref w, 16).AsInt16();
            s0 = Avx2.Subtract(s0, Offset(ref q8, scales));
            s1 = Avx2.Subtract(s1, Offset(ref Unsafe.Add(ref q8, yStride), scales));
            s2 = Avx2.Subtract(s2, Offset(ref Unsafe.Add(ref q8, 2 * yStride), scales));
            s3 = Avx2.Subtract(s3, Offset(ref Unsafe.Add(ref q8, 3 * yStride), scales));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<int> Offset(ref byte q8, Vector256<short> scales) =>
            Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, Q8_K.BsumsOffset - Q8_K.QsOffset)).AsInt16(), scales), 5);

        public static bool HasExtra => false;

        public static Vector256<float> Extra(ref Vector256<byte> w, ref byte yb, float d, float yd, Vector256<float> extra) => extra;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Finish(Vector256<float> acc, Vector256<float> extra) => QuantSimd.HorizontalSum(acc);
    }
}
