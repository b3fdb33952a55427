using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

internal sealed partial class IQ2_XS
{
    /// <summary>Decode-once tiles (<see cref="DecodedTiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        DecodedTiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IDecodedBlock
    {
        public static int BlockBytes => IQ2_XS.BlockBytes;
        public static int Vectors => 24;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Half(ref xb, 0);

        // VecDotAvx2's grid rows (9-bit indices), its sign masks as +-1 and the two 4-bit scales per sub-block.
        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            ref ulong g = ref MemoryMarshal.GetArrayDataReference(Iq2Grids.IQ2XS);
            ref ulong sm = ref MemoryMarshal.GetArrayDataReference(Iq2Dot.SignMasks);
            ref Vector256<short> scales = ref MemoryMarshal.GetArrayDataReference(Iq2Dot.NibbleScales);
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                ulong q = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref xb, 2 + 8 * ib32));
                uint q0 = (uint)q & 0xffff, q1 = (uint)(q >> 16) & 0xffff, q2 = (uint)(q >> 32) & 0xffff, q3 = (uint)(q >> 48);
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * ib32);
                v = Vector256.Create(Unsafe.Add(ref g, q0 & 511), Unsafe.Add(ref g, q1 & 511),
                                     Unsafe.Add(ref g, q2 & 511), Unsafe.Add(ref g, q3 & 511)).AsByte();
                Unsafe.Add(ref v, 1) = DecodedTiles.MaskToSign(Vector256.Create(Unsafe.Add(ref sm, q0 >> 9), Unsafe.Add(ref sm, q1 >> 9),
                                                                                Unsafe.Add(ref sm, q2 >> 9), Unsafe.Add(ref sm, q3 >> 9)).AsSByte());
                Unsafe.Add(ref v, 2) = Unsafe.Add(ref scales, (int)Unsafe.Add(ref xb, 66 + ib32)).AsByte();
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(ref Vector256<byte> w, ref byte q8) => DecodedTiles.SignedDot(ref w, ref q8);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dot4(ref Vector256<byte> w, ref byte q8, int yStride, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3) =>
            DecodedTiles.SignedDot4(ref w, ref q8, yStride, out s0, out s1, out s2, out s3);

        public static bool HasExtra => false;

        public static Vector256<float> Extra(ref Vector256<byte> w, ref byte yb, float d, float yd, Vector256<float> extra) => extra;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Finish(Vector256<float> acc, Vector256<float> extra) => 0.125f * Iq2Dot.HorizontalSum(acc);
    }
}
