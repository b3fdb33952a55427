using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

internal sealed partial class IQ4_XS
{
    /// <summary>Decode-once tiles (<see cref="DecodedTiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        DecodedTiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IDecodedBlock
    {
        public static int BlockBytes => IQ4_XS.BlockBytes;
        public static int Vectors => 24;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Half(ref xb, 0);

        // The levels x as |x| and x (VecDotAvx2's DotQuads: |x| times sign(q8, x)), and the 6-bit scale as an int16
        // multiplier: madd(pairs, ls) = (pair sum) * ls exactly, the int32 lanes of DotQuads times ls.
        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            var values = Vector128.LoadUnsafe(ref MemoryMarshal.GetReference(Iq4Values.KValues));
            int sh = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref xb, OffScalesH));
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                var q4b = IQ4_NL.Expand(Vector128.LoadUnsafe(ref Unsafe.Add(ref xb, OffQs + 16 * ib)), values);
                int sl = Unsafe.Add(ref xb, OffScalesL + ib / 2) >> 4 * (ib & 1);
                int ls = ((sl & 0xf) | ((sh >> 2 * ib << 4) & 0x30)) - 32;
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * ib);
                v = Avx2.Abs(q4b);
                Unsafe.Add(ref v, 1) = q4b.AsByte();
                Unsafe.Add(ref v, 2) = Vector256.Create((short)ls).AsByte();
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
        public static float Finish(Vector256<float> acc, Vector256<float> extra) => IqDot.HorizontalSum8(acc);
    }
}
