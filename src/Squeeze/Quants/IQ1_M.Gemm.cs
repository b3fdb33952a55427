using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

internal sealed partial class IQ1_M
{
    /// <summary>Decode-once tiles (<see cref="DecodedTiles{TBlock}"/>), bit-identical to <see cref="VecDot"/>.</summary>
    public void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        DecodedTiles<DotBlock>.Run(this, x, xStride, rows, y, yStride, cols, n, s, sStride);

    internal struct DotBlock : IDecodedBlock
    {
        public static int BlockBytes => IQ1_M.BlockBytes;
        // Per sub-block |g|, g and the 3-bit scales (24 vectors); then per sub-block the +-1 shift deltas.
        public static int Vectors => 32;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(ref byte xb) => Numerics.Fp16.ToFloat(ScaleBits(MemoryMarshal.CreateReadOnlySpan(ref xb, IQ1_M.BlockBytes)));

        public static void Decode(ref byte xb, ref Vector256<byte> w)
        {
            ref ulong g = ref MemoryMarshal.GetArrayDataReference(Iq2Grids.IQ1S);
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                uint sc = (uint)Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref xb, 48 + (ib & ~1))) >> 6 * (ib & 1);
                uint qs = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xb, 4 * ib));
                uint qh0 = Unsafe.Add(ref xb, 32 + 2 * ib), qh1 = Unsafe.Add(ref xb, 33 + 2 * ib);
                var gv = Vector256.Create(
                    Unsafe.Add(ref g, (qs & 255) | ((qh0 << 8) & 0x700)), Unsafe.Add(ref g, ((qs >> 8) & 255) | ((qh0 << 4) & 0x700)),
                    Unsafe.Add(ref g, ((qs >> 16) & 255) | ((qh1 << 8) & 0x700)), Unsafe.Add(ref g, (qs >> 24) | ((qh1 << 4) & 0x700))).AsSByte();
                uint deltaBits = ((qh0 >> 3) & 1) | ((qh0 >> 6) & 2) | ((qh1 >> 1) & 4) | ((qh1 >> 4) & 8);
                ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * ib);
                v = Avx2.Abs(gv);
                Unsafe.Add(ref v, 1) = gv.AsByte();
                Unsafe.Add(ref v, 2) = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Iq2Dot.TripletScales), (int)(sc & 63)).AsByte();
                Unsafe.Add(ref w, 24 + ib) = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Iq2Dot.GroupSigns), (int)deltaBits).AsByte();
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(ref Vector256<byte> w, ref byte q8) => DecodedTiles.SignedDot(ref w, ref q8);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dot4(ref Vector256<byte> w, ref byte q8, int yStride, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3) =>
            DecodedTiles.SignedDot4(ref w, ref q8, yStride, out s0, out s1, out s2, out s3);

        public static bool HasExtra => true;

        // The delta terms: 1 times sign(q8, +-1) per group of 8, times the sub-block scales, into their own eight
        // float lanes with the block's d.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Extra(ref Vector256<byte> w, ref byte yb, float d, float yd, Vector256<float> extra)
        {
            Vector256<byte> ones = Vector256.Create((byte)1);
            Vector256<int> sum = Vector256<int>.Zero;
            for (int k = 0; k < 8; k++)
            {
                Vector256<sbyte> q8 = Vector256.LoadUnsafe(ref Unsafe.Add(ref yb, 4 + 32 * k)).AsSByte();
                Vector256<short> dot = Avx2.MultiplyAddAdjacent(ones, Avx2.Sign(q8, Unsafe.Add(ref w, 24 + k).AsSByte()));
                sum = Avx2.Add(sum, Avx2.MultiplyAddAdjacent(dot, Unsafe.Add(ref w, 3 * k + 2).AsInt16()));
            }
            return Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sum), extra);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Finish(Vector256<float> acc, Vector256<float> extra) => Iq2Dot.HorizontalSum(acc) + Delta * Iq2Dot.HorizontalSum(extra);
    }
}
