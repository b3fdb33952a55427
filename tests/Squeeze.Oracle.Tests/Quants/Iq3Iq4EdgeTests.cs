using Squeeze.Numerics;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Quants;

/// <summary>
/// IQ3_XXS, IQ3_S, IQ4_NL and IQ4_XS on rows the shared conformance kinds do not produce: super-blocks with some
/// all-zero or near-zero sub-blocks (IQ3_S then shifts later sub-blocks' qs and signs, a ggml quirk kept for
/// identical bytes), sub-blocks of very different magnitudes, integer ties, subnormals, importance with zeros, and for
/// IQ4 NaN, Inf and values whose squares overflow;
/// at every SIMD level. And dot products bit-for-bit equal to ggml-cpu's x86 kernels.
/// </summary>
[Collection(SimdCollection.Name)]
public class Iq3Iq4EdgeTests
{
    public Iq3Iq4EdgeTests() => OracleLibrary.EnsureLoaded();

    public enum EdgeKind { ZeroSubBlocks, TinySubBlocks, IntegerTies, MixedScales, Subnormal, NaNs, Infinities, Big }

    // ggml's IQ3 search aborts on non-finite errors, so rows with NaN, Inf or overflowing squares are IQ4-only.
    private static bool NonFinite(EdgeKind k) => k is EdgeKind.NaNs or EdgeKind.Infinities or EdgeKind.Big;

    public static TheoryData<GgmlType, EdgeKind> Cases()
    {
        var data = new TheoryData<GgmlType, EdgeKind>();
        foreach (var t in new[] { GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ4_NL, GgmlType.IQ4_XS })
            foreach (var k in Enum.GetValues<EdgeKind>())
                if (!NonFinite(k) || t is GgmlType.IQ4_NL or GgmlType.IQ4_XS) data.Add(t, k);
        return data;
    }

    private static float[] Make(EdgeKind kind, int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            float g = Rows.Gaussian(rng);
            int sub = i / 32;
            x[i] = kind switch
            {
                EdgeKind.ZeroSubBlocks => sub % 3 == 1 ? 0f : g,
                EdgeKind.TinySubBlocks => sub % 4 == 2 ? g * 1e-9f : g,
                EdgeKind.IntegerTies => rng.Next(-8, 9),
                EdgeKind.MixedScales => g * MathF.Pow(10, sub % 7 - 3),
                EdgeKind.Subnormal => g * 1e-39f,
                EdgeKind.NaNs => rng.NextDouble() < 0.02 ? float.NaN : g,
                EdgeKind.Infinities => rng.NextDouble() < 0.02 ? (rng.Next(2) == 0 ? float.PositiveInfinity : float.NegativeInfinity) : g,
                EdgeKind.Big => g * 1e19f,
                _ => throw new ArgumentOutOfRangeException(nameof(kind)),
            };
        }
        return x;
    }

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(Cases))]
    public void Quantize_is_bitwise_equal_to_ggml_at_every_level(GgmlType type, EdgeKind kind)
    {
        const int nrows = 2, n = 1024;
        var x = Make(kind, nrows * n, seed: (int)kind * 7 + (int)type);
        var rng = new Random((int)type);
        var w = new float[n];
        for (int i = 0; i < n; i++) w[i] = rng.NextDouble() < 0.1 ? 0f : MathF.Exp(2f * Rows.Gaussian(rng));
        foreach (var importance in new[] { null, w })
        {
            var expected = Oracle.Quantize(type, x, nrows, n, importance);
            foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
            {
                using var _ = Simd.Override(level);
                var actual = new byte[expected.Length];
                QuantKernels.Quantize(type, x, actual, nrows, n, importance);
                BlockAssert.Equal(type, expected, actual, $"{kind} rows, importance {(importance is null ? "off" : "on")}, {level}");
            }
        }
    }

    [Theory(SkipTestWithoutData = true)]
    [InlineData(GgmlType.IQ3_XXS)]
    [InlineData(GgmlType.IQ3_S)]
    [InlineData(GgmlType.IQ4_NL)]
    [InlineData(GgmlType.IQ4_XS)]
    public void VecDot_is_bitwise_equal_to_ggml_x86(GgmlType type)
    {
        // Squeeze keeps the lane order of ggml-cpu's AVX2 kernels, which the avx2 and avx512 builds run.
        Assert.SkipUnless(OracleLibrary.Variant is "avx2" or "avx512", "ggml runs its generic kernels on this CPU");
        var kernel = QuantKernels.Get(type);
        var traits = GgmlTypes.Get(type);
        foreach (int n in new[] { 256, 288, 1120, 4096, 11008 })
        {
            if (n % traits.BlockSize != 0) continue;
            for (int rep = 0; rep < 5; rep++)
            {
                var x = RandomBlocks.Make(type, n / traits.BlockSize, seed: n + rep);
                var y = Oracle.FromFloat(kernel.VecDotType, Rows.Make(RowKind.HeavyTailed, 1, n, seed: n - rep));
                float expected = Oracle.VecDot(type, x, y, n);
                foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
                {
                    using var _ = Simd.Override(level);
                    float actual = kernel.VecDot(x, y, n);
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual),
                        $"{traits.Name} n={n} at {level}: ggml {expected:R}, squeeze {actual:R}");
                }
            }
        }
    }
}
