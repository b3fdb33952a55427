using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ3_S
{
    /// <summary>
    /// AVX2 dot product in ggml-cpu's lane layout: grid bytes times sign-applied Q8_K bytes (<c>vpmaddubsw</c>),
    /// scaled per sub-block (<c>vpmaddwd</c>), eight float lanes accumulated with FMA.
    /// </summary>
    private static unsafe float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        var accum = Vector256<float>.Zero;
        // Byte e of a 32-byte chunk takes sign byte e/8 (mask1) and tests bit e%8 (mask2).
        var mask1 = Vector256.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                     2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        var mask2 = Vector256.Create(0x8040201008040201UL).AsByte();
        fixed (uint* grid = Iq3Grids.Iq3sGrid)
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            for (int i = 0; i < nb; i++)
            {
                byte* xb = px + i * BlockBytes;
                byte* yb = py + i * IqDot.Q8KBytes;
                float d = Fp16.ToFloat(*(ushort*)xb) * *(float*)yb;
                byte* qs = xb + OffQs;
                byte* qh = xb + OffQh;
                uint* signs = (uint*)(xb + OffSigns);
                sbyte* q8 = (sbyte*)(yb + 4);
                var sumi1 = Vector256<int>.Zero;
                var sumi2 = Vector256<int>.Zero;
                for (int ib32 = 0; ib32 < QK_K / 32; ib32 += 2)
                {
                    var q8_1 = Avx.LoadVector256(q8);
                    var q8_2 = Avx.LoadVector256(q8 + 32);
                    q8 += 64;
                    uint h1 = qh[ib32], h2 = qh[ib32 + 1];
                    var q2_1 = Vector256.Create(
                        grid[qs[0] | ((h1 << 8) & 256)], grid[qs[1] | ((h1 << 7) & 256)],
                        grid[qs[2] | ((h1 << 6) & 256)], grid[qs[3] | ((h1 << 5) & 256)],
                        grid[qs[4] | ((h1 << 4) & 256)], grid[qs[5] | ((h1 << 3) & 256)],
                        grid[qs[6] | ((h1 << 2) & 256)], grid[qs[7] | ((h1 << 1) & 256)]).AsByte();
                    var q2_2 = Vector256.Create(
                        grid[qs[8] | ((h2 << 8) & 256)], grid[qs[9] | ((h2 << 7) & 256)],
                        grid[qs[10] | ((h2 << 6) & 256)], grid[qs[11] | ((h2 << 5) & 256)],
                        grid[qs[12] | ((h2 << 4) & 256)], grid[qs[13] | ((h2 << 3) & 256)],
                        grid[qs[14] | ((h2 << 2) & 256)], grid[qs[15] | ((h2 << 1) & 256)]).AsByte();
                    qs += 16;

                    var aux = Avx2.Shuffle(Vector256.Create(signs[0]).AsByte(), mask1) & mask2;
                    var s2_1 = Avx2.CompareEqual(aux, mask2).AsSByte();
                    var q8s_1 = (s2_1 ^ q8_1) - s2_1;
                    aux = Avx2.Shuffle(Vector256.Create(signs[1]).AsByte(), mask1) & mask2;
                    var s2_2 = Avx2.CompareEqual(aux, mask2).AsSByte();
                    var q8s_2 = (s2_2 ^ q8_2) - s2_2;
                    signs += 2;

                    var dot1 = Avx2.MultiplyAddAdjacent(q2_1, q8s_1);
                    var dot2 = Avx2.MultiplyAddAdjacent(q2_2, q8s_2);
                    int sc = xb[OffScales + ib32 / 2];
                    var p1 = Avx2.MultiplyAddAdjacent(dot1, Vector256.Create((short)(2 * (sc & 0xf) + 1)));
                    var p2 = Avx2.MultiplyAddAdjacent(dot2, Vector256.Create((short)(2 * (sc >> 4) + 1)));
                    sumi1 += p1;
                    sumi2 += p2;
                }
                accum = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi1 + sumi2), accum);
            }
        }
        return IqDot.HorizontalSum8(accum);
    }
}
