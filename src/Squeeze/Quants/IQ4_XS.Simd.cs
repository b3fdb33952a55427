using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ4_XS
{
    /// <summary>AVX2 dot product in ggml-cpu's lane layout: 4-bit levels by <c>pshufb</c>, signed quads, block scales as int32 multipliers.</summary>
    private static unsafe float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        var accum = Vector256<float>.Zero;
        fixed (sbyte* pv = Iq4Values.KValues)
        fixed (byte* px = x)
        fixed (byte* py = y)
        {
            var values = Sse2.LoadVector128(pv);
            for (int ibl = 0; ibl < nb; ibl++)
            {
                byte* xb = px + ibl * BlockBytes;
                byte* yb = py + ibl * IqDot.Q8KBytes;
                byte* qs = xb + OffQs;
                sbyte* q8 = (sbyte*)(yb + 4);
                int sh = *(ushort*)(xb + OffScalesH);
                var sumi = Vector256<int>.Zero;
                for (int ib = 0; ib < QK_K / 32; ib += 2)
                {
                    var q4b_1 = IQ4_NL.Expand(Sse2.LoadVector128(qs), values);
                    var q4b_2 = IQ4_NL.Expand(Sse2.LoadVector128(qs + 16), values);
                    qs += 32;
                    var p_1 = IQ4_NL.DotQuads(q4b_1, Avx.LoadVector256(q8));
                    var p_2 = IQ4_NL.DotQuads(q4b_2, Avx.LoadVector256(q8 + 32));
                    q8 += 64;
                    int sl = xb[OffScalesL + ib / 2];
                    int ls1 = ((sl & 0xf) | ((sh << 4) & 0x30)) - 32;
                    int ls2 = ((sl >> 4) | ((sh << 2) & 0x30)) - 32;
                    sh >>= 4;
                    sumi += Avx2.MultiplyLow(p_1, Vector256.Create(ls1)) + Avx2.MultiplyLow(p_2, Vector256.Create(ls2));
                }
                accum = Fma.MultiplyAdd(Vector256.Create(Fp16.ToFloat(*(ushort*)xb) * *(float*)yb),
                    Avx.ConvertToVector256Single(sumi), accum);
            }
        }
        return IqDot.HorizontalSum8(accum);
    }
}
