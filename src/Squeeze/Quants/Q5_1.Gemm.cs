using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class Q5_1
{
    /// <summary>Register-blocked tiles (<see cref="Q81Tiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        Q81Tiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IQ81DotBlock
    {
        public static int BlockBytes => Q5_1.BlockBytes;

        // Nibbles with 0x10 where the fifth bit is set, as VecDotAvx2 decodes them.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Quants(ref byte block)
        {
            Vector256<byte> qx = QuantSimd.BytesFromNibbles(ref Unsafe.Add(ref block, 8));
            Vector256<byte> bxhi = QuantSimd.BytesFromBits(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref block, 4)));
            return Avx2.Or(qx, Avx2.And(bxhi, Vector256.Create((byte)0x10)));
        }
    }
}
