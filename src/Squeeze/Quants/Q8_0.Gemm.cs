using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Squeeze.Quants;

public sealed partial class Q8_0
{
    /// <summary>Register-blocked tiles (<see cref="Q8Tiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        Q8Tiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IQ8DotBlock
    {
        public static int BlockBytes => Q8_0.BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Quants(ref byte block) => Vector256.LoadUnsafe(ref Unsafe.Add(ref block, 2)).AsSByte();
    }
}
