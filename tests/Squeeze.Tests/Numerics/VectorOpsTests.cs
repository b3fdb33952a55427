using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;
using Xunit;

namespace Squeeze.Tests.Numerics;

/// <summary>
/// ggml's vector e^x (both x86 versions) against the C library's: within 3 ulp over the whole range (ggml states 2 ulp for
/// the AVX2 routine; the AVX-512 form, bitwise llama.cpp's, reaches 2.2 ulp near -3.87), +Inf above 88.7 and 0 below -104
/// as ggml's recipe gives them. SyntheticModelTests checks the AVX-512 version
/// bitwise against llama.cpp through SwiGLU; the AVX2 one runs only on CPUs without AVX-512, so this is its check.
/// </summary>
public sealed class VectorOpsTests
{
    public static TheoryData<int> Widths() => [8, 16];

    [Theory]
    [MemberData(nameof(Widths))]
    public void Vector_exp_is_close_to_expf(int width)
    {
        if (width == 8 && !(Avx2.IsSupported && Fma.IsSupported)) Assert.Skip("no AVX2 + FMA");
        if (width == 16 && !(Avx512F.IsSupported && Avx512DQ.IsSupported)) Assert.Skip("no AVX-512 F + DQ");
        var rng = new Random(5);
        var xs = new List<float> { 0f, -0f, 1f, -1f, 88f, 88.7f, 89f, 100f, 200f, -87f, -100f, -103.9f, -104f, -110f, -150f, 1e-8f, -1e-8f };
        for (int i = 0; i < 20000; i++) xs.Add((float)(rng.NextDouble() * 220 - 120));
        while (xs.Count % width != 0) xs.Add(0.5f);
        for (int i = 0; i < xs.Count; i += width)
        {
            var chunk = xs.GetRange(i, width).ToArray();
            float[] got = width == 8 ? Store256(VectorOps.ExpAvx2(Vector256.Create(chunk))) : Store(VectorOps.ExpAvx512(Vector512.Create(chunk)));
            for (int k = 0; k < width; k++)
            {
                double want = Math.Exp(chunk[k]);
                if (want > float.MaxValue) Assert.True(float.IsPositiveInfinity(got[k]) || got[k] > 3e38f, $"e^{chunk[k]} = {got[k]}");
                else if (want < 1e-45) Assert.True(got[k] < 1e-44f, $"e^{chunk[k]} = {got[k]}");
                else if (want > 1.2e-38) Assert.True(Math.Abs(got[k] - want) <= 3 * ulp((float)want), $"width {width}: e^{chunk[k]} = {got[k]:R}, expf {want:R}");
            }
        }

        static float ulp(float v) => MathF.BitIncrement(v) - v;
        static float[] Store256(Vector256<float> v) { var a = new float[8]; v.CopyTo(a); return a; }
    }

    private static float[] Store(Vector512<float> v)
    {
        var a = new float[16];
        v.CopyTo(a);
        return a;
    }
}
