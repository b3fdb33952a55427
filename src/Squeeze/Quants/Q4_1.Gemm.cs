using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Squeeze.Quants;

public sealed partial class Q4_1
{
    /// <summary>Register-blocked tiles (<see cref="Q81Tiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        Q81Tiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IQ81DotBlock
    {
        public static int BlockBytes => Q4_1.BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Quants(ref byte block) => QuantSimd.BytesFromNibbles(ref Unsafe.Add(ref block, 4));
    }
}
