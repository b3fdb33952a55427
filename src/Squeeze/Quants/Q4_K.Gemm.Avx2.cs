using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q4_K
{
    /// <summary>
    /// The AVX2-level tile (<see cref="DecodedTiles{TBlock}"/>): nibbles, scales and mins unpacked once per block for
    /// every activation row; the lanes and float steps of <see cref="VecDotAvx2"/>'s 256-bit loop.
    /// </summary>
    internal struct Avx2Block : IDecodedBlock
    {
        public static int BlockBytes => Q4_K.BlockBytes;
        // Per 32-quant chunk: nibbles and int16 scales (16 vectors); then the mins (int16, low half) and dmin.
        public static int Vectors => 18;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Half(ref xb, DOffset);

        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            Vector256<byte> m4 = Vector256.Create((byte)0xF);
            Vector256<short> minsAndScales = MinsAndScales(ref xb, ScalesOffset);
            Vector128<short> sc128 = minsAndScales.GetLower();
            Vector256<sbyte> scales = Vector256.Create(sc128, sc128).AsSByte();
            for (int j = 0; j < QK / 64; ++j)
            {
                Vector256<byte> q4bits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 4 * j);
                v = Avx2.And(q4bits, m4);
                Unsafe.Add(ref v, 1) = Avx2.Shuffle(scales, QuantSimd.ScaleShuffle32(2 * j)).AsByte();
                Unsafe.Add(ref v, 2) = Avx2.And(Avx2.ShiftRightLogical(q4bits.AsUInt16(), 4).AsByte(), m4);
                Unsafe.Add(ref v, 3) = Avx2.Shuffle(scales, QuantSimd.ScaleShuffle32(2 * j + 1)).AsByte();
            }
            Unsafe.Add(ref w, 16) = minsAndScales.AsByte();
            Unsafe.Add(ref w, 17) = Vector256.Create(Half(ref xb, DminOffset)).AsByte();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(ref Vector256<byte> w, ref byte q8) => ScaledNibbleDot(ref w, ref q8);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dot4(ref Vector256<byte> w, ref byte q8, int yStride, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3) =>
            DecodedTiles.ScaledDot4(ref w, ref q8, yStride, out s0, out s1, out s2, out s3);

        public static bool HasExtra => true;

        // The mins: dmin = -d_y * dmin_x times the pairwise group sums, into four float lanes.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Extra(ref Vector256<byte> w, ref byte yb, float d, float yd, Vector256<float> extra)
        {
            float dmin = -yd * Unsafe.Add(ref w, 17).AsSingle().ToScalar();
            Vector128<int> prod = Sse2.MultiplyAddAdjacent(Unsafe.Add(ref w, 16).AsInt16().GetUpper(), GroupSums(ref yb));
            return Fma.MultiplyAdd(Vector128.Create(dmin), Sse2.ConvertToVector128Single(prod), extra.GetLower()).ToVector256Unsafe();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Finish(Vector256<float> acc, Vector256<float> extra) => Q4_K.Finish(acc, extra.GetLower());
    }

    /// <summary>
    /// Eight chunks of (unsigned bytes, int16 scales) against 256 activation quants: <c>madd(scale, maddubs(q, q8))</c>
    /// summed, the lane totals of the Q4_K/Q5_K AVX2 loops.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> ScaledNibbleDot(ref Vector256<byte> w, ref byte q8)
    {
        Vector256<int> sum = Vector256<int>.Zero;
        for (int c = 0; c < 8; c++)
        {
            ref Vector256<byte> v = ref Unsafe.Add(ref w, 2 * c);
            Vector256<short> p16 = Avx2.MultiplyAddAdjacent(v, Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32 * c)).AsSByte());
            sum = Avx2.Add(sum, Avx2.MultiplyAddAdjacent(Unsafe.Add(ref v, 1).AsInt16(), p16));
        }
        return sum;
    }
}
