using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

public sealed partial class Q4_0
{
    /// <summary>Register-blocked tiles (<see cref="Q8Tiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        Q8Tiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IQ8DotBlock
    {
        public static int BlockBytes => Q4_0.BlockBytes;

        // Nibbles to bytes minus 8, as VecDotAvx2 decodes them.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Quants(ref byte block) =>
            Avx2.Subtract(QuantSimd.BytesFromNibbles(ref Unsafe.Add(ref block, 2)), Vector256.Create((byte)8)).AsSByte();
    }
}
