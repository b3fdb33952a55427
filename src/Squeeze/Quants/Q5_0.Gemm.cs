using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class Q5_0
{
    /// <summary>Register-blocked tiles (<see cref="Q8Tiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        Q8Tiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IQ8DotBlock
    {
        public static int BlockBytes => Q5_0.BlockBytes;

        // Nibbles with the fifth bit folded in as VecDotAvx2 does: q - 16 as a signed byte.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Quants(ref byte block)
        {
            Vector256<byte> qx = QuantSimd.BytesFromNibbles(ref Unsafe.Add(ref block, 6));
            Vector256<byte> bxhi = QuantSimd.BytesFromBits(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref block, 2)));
            return Avx2.Or(qx, Avx2.AndNot(bxhi, Vector256.Create((byte)0xF0))).AsSByte();
        }
    }
}
