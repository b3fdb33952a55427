using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

internal sealed partial class IQ3_XXS
{
    /// <summary>Decode-once tiles (<see cref="DecodedTiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        DecodedTiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IDecodedBlock
    {
        public static int BlockBytes => IQ3_XXS.BlockBytes;
        public static int Vectors => 24;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Half(ref xb, 0);

        // VecDotAvx2's grid rows, its +-1 sign bytes (already the vpsignb form) and 2 * scale + 1 per sub-block.
        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            ref uint grid = ref MemoryMarshal.GetReference(Iq3Grids.Iq3xxsGrid);
            ref ulong signs64 = ref MemoryMarshal.GetArrayDataReference(Iq3Grids.EvenSigns);
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                ref byte q3 = ref Unsafe.Add(ref xb, 2 + 8 * ib32);
                uint aux = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xb, 2 + QK_K / 4 + 4 * ib32));
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * ib32);
                v = Vector256.Create(
                    Unsafe.Add(ref grid, Unsafe.Add(ref q3, 0)), Unsafe.Add(ref grid, Unsafe.Add(ref q3, 1)),
                    Unsafe.Add(ref grid, Unsafe.Add(ref q3, 2)), Unsafe.Add(ref grid, Unsafe.Add(ref q3, 3)),
                    Unsafe.Add(ref grid, Unsafe.Add(ref q3, 4)), Unsafe.Add(ref grid, Unsafe.Add(ref q3, 5)),
                    Unsafe.Add(ref grid, Unsafe.Add(ref q3, 6)), Unsafe.Add(ref grid, Unsafe.Add(ref q3, 7))).AsByte();
                Unsafe.Add(ref v, 1) = Vector256.Create(
                    Unsafe.Add(ref signs64, (int)(aux & 127)), Unsafe.Add(ref signs64, (int)((aux >> 7) & 127)),
                    Unsafe.Add(ref signs64, (int)((aux >> 14) & 127)), Unsafe.Add(ref signs64, (int)((aux >> 21) & 127))).AsByte();
                Unsafe.Add(ref v, 2) = Vector256.Create((short)(2 * (aux >> 28) + 1)).AsByte();
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
        public static float Finish(Vector256<float> acc, Vector256<float> extra) => 0.25f * IqDot.HorizontalSum8(acc);
    }
}
