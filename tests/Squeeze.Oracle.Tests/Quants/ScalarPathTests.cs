using Squeeze.Numerics;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Quants;

/// <summary>
/// The conformance tests compare quantization with ggml at the CPU's best SIMD level, and compare other levels
/// with the scalar code only with importance weights. The legacy and k-quant quantizers also have vector forms
/// of their reference (no-importance) paths, so here the scalar reference itself is held to ggml's bytes, with and
/// without importance, and so are the activation quantizers (Q8_1, Q8_K).
/// </summary>
[Collection(SimdCollection.Name)]
public class ScalarPathTests
{
    public ScalarPathTests() => OracleLibrary.EnsureLoaded();

    public static TheoryData<GgmlType, RowKind> Cases()
    {
        var data = new TheoryData<GgmlType, RowKind>();
        GgmlType[] types = [GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q8_1,
            GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_K];
        foreach (var t in types) foreach (var k in Enum.GetValues<RowKind>()) data.Add(t, k);
        return data;
    }

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(Cases))]
    public void Scalar_quantize_is_bitwise_equal_to_ggml(GgmlType type, RowKind kind)
    {
        var kernel = QuantKernels.Get(type);
        var traits = GgmlTypes.Get(type);
        bool activation = type is GgmlType.Q8_1 or GgmlType.Q8_K;
        using var _ = Simd.Override(SimdLevel.Scalar);
        foreach (int n in new[] { 256, 4096 + 256 })
        {
            var x = Rows.Make(kind, 1, n, seed: n * 13 + (int)kind);
            foreach (bool withImportance in activation ? new[] { false } : new[] { false, true })
            {
                var w = withImportance ? Rows.Importance(n, seed: n + 1) : null;
                var expected = activation ? Oracle.FromFloatRef(type, x) : Oracle.Quantize(type, x, 1, n, w);
                var actual = new byte[traits.RowSize(n)];
                kernel.QuantizeRow(x, actual, w);
                BlockAssert.Equal(type, expected, actual, $"scalar, {kind} row of {n}, importance {(withImportance ? "on" : "off")}");
            }
        }
    }
}
