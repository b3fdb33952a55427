using Squeeze.Numerics;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Quants;

/// <summary>
/// The legacy and k-quant dot products reproduce ggml-cpu's AVX2 kernels lane for lane, so at the AVX2 level
/// (and at the AVX-512 level, whose integer work folds into the same lanes) they are bit-identical to ggml's
/// <c>vec_dot</c>, which is stronger than the 1e-6 the conformance tests ask of every kernel.
/// </summary>
[Collection(SimdCollection.Name)]
public class DotProductPathTests
{
    public DotProductPathTests() => OracleLibrary.EnsureLoaded();

    public static TheoryData<GgmlType, SimdLevel> Cases()
    {
        var data = new TheoryData<GgmlType, SimdLevel>();
        GgmlType[] types = [GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
            GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];
        foreach (var t in types) foreach (var level in new[] { SimdLevel.Avx2, SimdLevel.Avx512 }) data.Add(t, level);
        return data;
    }

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(Cases))]
    public void VecDot_is_bitwise_equal_to_ggml(GgmlType type, SimdLevel level)
    {
        if (!Simd.IsSupported(level)) Assert.Skip($"this CPU does not support {level}");
        var kernel = QuantKernels.Get(type);
        var traits = GgmlTypes.Get(type);
        using var _ = Simd.Override(level);
        foreach (int n in Rows.Lengths(GgmlTypes.QK_K))
        {
            var x = RandomBlocks.Make(type, n / traits.BlockSize, seed: 3 * n);
            var y = Oracle.FromFloat(kernel.VecDotType, Rows.Make(RowKind.HeavyTailed, 1, n, seed: n + 5));
            float expected = Oracle.VecDot(type, x, y, n);
            float actual = kernel.VecDot(x, y, n);
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual),
                $"{traits.Name} vec_dot n={n} at {level}: ggml {expected:R}, squeeze {actual:R}");
        }
    }
}
