using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

internal sealed partial class IQ1_S
{
    /// <summary>Decode-once tiles (<see cref="DecodedTiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        DecodedTiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IDecodedBlock
    {
        public static int BlockBytes => IQ1_S.BlockBytes;
        // Per sub-block |g|, g and 2 * scale + 1; then the delta multipliers (sign times scale) per group of 16.
        public static int Vectors => 25;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Half(ref xb, 0);

        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            ref ulong g = ref MemoryMarshal.GetArrayDataReference(Iq2Grids.IQ1S);
            Span<short> delta = stackalloc short[16];
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                uint qs = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xb, 2 + 4 * ib));
                uint qh = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref xb, 34 + 2 * ib));
                var gv = Vector256.Create(
                    Unsafe.Add(ref g, (qs & 255) | ((qh << 8) & 0x700)), Unsafe.Add(ref g, ((qs >> 8) & 255) | ((qh << 5) & 0x700)),
                    Unsafe.Add(ref g, ((qs >> 16) & 255) | ((qh << 2) & 0x700)), Unsafe.Add(ref g, (qs >> 24) | ((qh >> 1) & 0x700))).AsSByte();
                int ls = (int)(2 * ((qh >> 12) & 7) + 1);
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * ib);
                v = Avx2.Abs(gv);
                Unsafe.Add(ref v, 1) = gv.AsByte();
                Unsafe.Add(ref v, 2) = Vector256.Create((short)ls).AsByte();
                delta[2 * ib] = delta[2 * ib + 1] = (short)((1 - (int)((qh >> 14) & 2)) * ls);
            }
            Unsafe.Add(ref w, 24) = Vector256.Create<short>(delta).AsByte();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(ref Vector256<byte> w, ref byte q8) => DecodedTiles.SignedDot(ref w, ref q8);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dot4(ref Vector256<byte> w, ref byte q8, int yStride, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3) =>
            DecodedTiles.SignedDot4(ref w, ref q8, yStride, out s0, out s1, out s2, out s3);

        public static bool HasExtra => true;

        // The delta terms: the block sums of 16 times sign and scale, one integer per block, accumulated as a scalar
        // with a fused multiply-add (lane 0), as VecDotAvx2 does.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Extra(ref Vector256<byte> w, ref byte yb, float d, float yd, Vector256<float> extra)
        {
            Vector256<short> bsums = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, 260)).AsInt16();
            int sumd = Vector256.Sum(Avx2.MultiplyAddAdjacent(bsums, Unsafe.Add(ref w, 24).AsInt16()));
            return Vector256.CreateScalar(MathF.FusedMultiplyAdd(d, sumd, extra.ToScalar()));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Finish(Vector256<float> acc, Vector256<float> extra) => Iq2Dot.HorizontalSum(acc) + Delta * extra.ToScalar();
    }
}
