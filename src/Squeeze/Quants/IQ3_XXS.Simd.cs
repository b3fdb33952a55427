using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ3_XXS
{
    /// <summary>
    /// AVX2 dot product: grid bytes (unsigned) times sign-applied Q8_K bytes with <c>vpmaddubsw</c>, scaled per
    /// sub-block with <c>vpmaddwd</c>; the same lanes and float order as ggml-cpu's AVX2 kernel.
    /// </summary>
    private static unsafe float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        var accum = Vector256<float>.Zero;
        fixed (uint* grid = Iq3Grids.Iq3xxsGrid)
        fixed (ulong* signs64 = Iq3Grids.EvenSigns)
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            for (int i = 0; i < nb; i++)
            {
                byte* xb = px + i * BlockBytes;
                byte* yb = py + i * IqDot.Q8KBytes;
                float d = Fp16.ToFloat(*(ushort*)xb) * *(float*)yb;
                byte* q3 = xb + 2;
                uint* gas = (uint*)(xb + 2 + QK_K / 4);
                sbyte* q8 = (sbyte*)(yb + 4);
                var sumi1 = Vector256<int>.Zero;
                var sumi2 = Vector256<int>.Zero;
                for (int ib32 = 0; ib32 < QK_K / 32; ib32 += 2)
                {
                    var q8_1 = Avx.LoadVector256(q8);
                    var q8_2 = Avx.LoadVector256(q8 + 32);
                    q8 += 64;
                    var q2_1 = Vector256.Create(grid[q3[0]], grid[q3[1]], grid[q3[2]], grid[q3[3]],
                                                grid[q3[4]], grid[q3[5]], grid[q3[6]], grid[q3[7]]).AsByte();
                    var q2_2 = Vector256.Create(grid[q3[8]], grid[q3[9]], grid[q3[10]], grid[q3[11]],
                                                grid[q3[12]], grid[q3[13]], grid[q3[14]], grid[q3[15]]).AsByte();
                    q3 += 16;
                    uint aux0 = gas[0], aux1 = gas[1];
                    gas += 2;
                    var s2_1 = Vector256.Create(signs64[aux0 & 127], signs64[(aux0 >> 7) & 127],
                                                signs64[(aux0 >> 14) & 127], signs64[(aux0 >> 21) & 127]).AsSByte();
                    var s2_2 = Vector256.Create(signs64[aux1 & 127], signs64[(aux1 >> 7) & 127],
                                                signs64[(aux1 >> 14) & 127], signs64[(aux1 >> 21) & 127]).AsSByte();
                    var dot1 = Avx2.MultiplyAddAdjacent(q2_1, Avx2.Sign(q8_1, s2_1));
                    var dot2 = Avx2.MultiplyAddAdjacent(q2_2, Avx2.Sign(q8_2, s2_2));
                    var p1 = Avx2.MultiplyAddAdjacent(dot1, Vector256.Create((short)(2 * (aux0 >> 28) + 1)));
                    var p2 = Avx2.MultiplyAddAdjacent(dot2, Vector256.Create((short)(2 * (aux1 >> 28) + 1)));
                    sumi1 += p1;
                    sumi2 += p2;
                }
                accum = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi1 + sumi2), accum);
            }
        }
        return 0.25f * IqDot.HorizontalSum8(accum);
    }
}
