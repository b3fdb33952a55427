using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

public sealed partial class Q5_K
{
    /// <summary>
    /// The AVX2-level tile (<see cref="DecodedTiles{TBlock}"/>): five-bit values, scales and mins unpacked once per
    /// block for every activation row; the lanes and float steps of <see cref="VecDotAvx2"/>'s 256-bit loop.
    /// </summary>
    internal struct Avx2Block : IDecodedBlock
    {
        public static int BlockBytes => Q5_K.BlockBytes;
        // Per 32-quant chunk: values and int16 scales (16 vectors); then the mins (int16, high half) and dmin.
        public static int Vectors => 18;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Half(ref xb, DOffset);

        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            Vector256<byte> m4 = Vector256.Create((byte)0xF), sixteen = Vector256.Create((byte)16);
            Vector256<short> minsAndScales = Q4_K.MinsAndScales(ref xb, ScalesOffset);
            Vector128<short> sc128 = minsAndScales.GetLower();
            Vector256<sbyte> scales = Vector256.Create(sc128, sc128).AsSByte();
            Vector256<byte> hbits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QhOffset));
            for (int j = 0; j < QK / 64; ++j)
            {
                Vector256<byte> q5bits = Vector256.LoadUnsafe(ref Unsafe.Add(ref xb, QsOffset + 32 * j));
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 4 * j);
                v = Avx2.Add(Avx2.And(q5bits, m4), HighBit(hbits, 2 * j, sixteen));
                Unsafe.Add(ref v, 1) = Avx2.Shuffle(scales, QuantSimd.ScaleShuffle32(2 * j)).AsByte();
                Unsafe.Add(ref v, 2) = Avx2.Add(Avx2.And(Avx2.ShiftRightLogical(q5bits.AsUInt16(), 4).AsByte(), m4), HighBit(hbits, 2 * j + 1, sixteen));
                Unsafe.Add(ref v, 3) = Avx2.Shuffle(scales, QuantSimd.ScaleShuffle32(2 * j + 1)).AsByte();
            }
            Unsafe.Add(ref w, 16) = minsAndScales.AsByte();
            Unsafe.Add(ref w, 17) = Vector256.Create(Half(ref xb, DminOffset)).AsByte();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(ref Vector256<byte> w, ref byte q8) => Q4_K.ScaledNibbleDot(ref w, ref q8);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dot4(ref Vector256<byte> w, ref byte q8, int yStride, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3) =>
            DecodedTiles.ScaledDot4(ref w, ref q8, yStride, out s0, out s1, out s2, out s3);

        public static bool HasExtra => true;

        // The mins as one integer per block, accumulated as a scalar with a fused multiply-add (lane 0).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Extra(ref Vector256<byte> w, ref byte yb, float d, float yd, Vector256<float> extra)
        {
            float dmin = -yd * Unsafe.Add(ref w, 17).AsSingle().ToScalar();
            Vector128<int> prod = Sse2.MultiplyAddAdjacent(Unsafe.Add(ref w, 16).AsInt16().GetUpper(), Q4_K.GroupSums(ref yb));
            return Vector256.CreateScalar(MathF.FusedMultiplyAdd(dmin, Vector128.Sum(prod), extra.ToScalar()));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Finish(Vector256<float> acc, Vector256<float> extra) => QuantSimd.HorizontalSum(acc) + extra.ToScalar();
    }
}
