using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

internal sealed partial class IQ3_S
{
    /// <summary>Decode-once tiles (<see cref="DecodedTiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        DecodedTiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IDecodedBlock
    {
        public static int BlockBytes => IQ3_S.BlockBytes;
        public static int Vectors => 24;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Half(ref xb, 0);

        // VecDotAvx2's grid rows (9-bit indices), its sign masks as +-1, and 2 * scale + 1 per sub-block.
        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            ref uint grid = ref MemoryMarshal.GetReference(Iq3Grids.Iq3sGrid);
            var mask1 = Vector256.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
            var mask2 = Vector256.Create(0x8040201008040201UL).AsByte();
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                ref byte qs = ref Unsafe.Add(ref xb, OffQs + 8 * ib32);
                uint h = Unsafe.Add(ref xb, OffQh + ib32);
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * ib32);
                v = Vector256.Create(
                    Unsafe.Add(ref grid, Unsafe.Add(ref qs, 0) | ((h << 8) & 256)), Unsafe.Add(ref grid, Unsafe.Add(ref qs, 1) | ((h << 7) & 256)),
                    Unsafe.Add(ref grid, Unsafe.Add(ref qs, 2) | ((h << 6) & 256)), Unsafe.Add(ref grid, Unsafe.Add(ref qs, 3) | ((h << 5) & 256)),
                    Unsafe.Add(ref grid, Unsafe.Add(ref qs, 4) | ((h << 4) & 256)), Unsafe.Add(ref grid, Unsafe.Add(ref qs, 5) | ((h << 3) & 256)),
                    Unsafe.Add(ref grid, Unsafe.Add(ref qs, 6) | ((h << 2) & 256)), Unsafe.Add(ref grid, Unsafe.Add(ref qs, 7) | ((h << 1) & 256))).AsByte();
                uint signs = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xb, OffSigns + 4 * ib32));
                var aux = Avx2.Shuffle(Vector256.Create(signs).AsByte(), mask1) & mask2;
                Unsafe.Add(ref v, 1) = DecodedTiles.MaskToSign(Avx2.CompareEqual(aux, mask2).AsSByte());
                int sc = Unsafe.Add(ref xb, OffScales + ib32 / 2) >> 4 * (ib32 & 1);
                Unsafe.Add(ref v, 2) = Vector256.Create((short)(2 * (sc & 0xf) + 1)).AsByte();
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
