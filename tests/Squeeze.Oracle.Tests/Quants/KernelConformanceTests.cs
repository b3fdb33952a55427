using Squeeze.Numerics;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Quants;

/// <summary>
/// Every registered kernel against ggml: quantize bitwise (with and without importance, every row kind, every
/// length), dequantize bitwise (of quantized rows and of random blocks), dot products within 1e-6 relative,
/// and each SIMD level against the scalar reference.
/// </summary>
[Collection(SimdCollection.Name)]
public class KernelConformanceTests
{
    public KernelConformanceTests() => OracleLibrary.EnsureLoaded();

    /// <summary>Types with kernels in Squeeze.</summary>
    public static TheoryData<GgmlType> Types() => new(KernelTypes());

    private static IEnumerable<GgmlType> KernelTypes() =>
        GgmlTypes.All.Select(t => t.Type).Where(t => QuantKernels.Find(t) is not null);

    public static TheoryData<GgmlType, RowKind> TypesAndKinds()
    {
        var data = new TheoryData<GgmlType, RowKind>();
        foreach (var t in KernelTypes()) foreach (var k in Enum.GetValues<RowKind>()) data.Add(t, k);
        return data;
    }

    private static bool Quantizable(GgmlType type) => type is not (GgmlType.Q8_1 or GgmlType.Q8_K);

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(TypesAndKinds))]
    public void Quantize_is_bitwise_equal_to_ggml(GgmlType type, RowKind kind)
    {
        if (!Quantizable(type)) return; // activation formats: checked through FromFloat below
        var traits = GgmlTypes.Get(type);
        var kernel = QuantKernels.Get(type);
        const int nrows = 3;
        foreach (int n in Rows.Lengths(traits.BlockSize))
        {
            var x = Rows.Make(kind, nrows, n, seed: n * 31 + (int)kind);
            foreach (bool withImportance in new[] { false, true })
            {
                if (!withImportance && kernel.RequiresImportance) continue;
                var w = withImportance ? Rows.Importance(n, seed: n) : null;
                byte[] expected;
                try { expected = Oracle.Quantize(type, x, nrows, n, w); }
                catch (OracleRefusedException)
                {
                    // ggml may abort the process on these rows (values whose squares overflow: its grid search finds no
                    // finite error). Squeeze's search stops exactly where ggml's asserts fire; when it finds an answer,
                    // ggml survives these rows too and the bytes are compared after all.
                    var ours = new byte[traits.RowSize(n) * nrows];
                    try { QuantKernels.Quantize(type, x, ours, nrows, n, w); }
                    catch (InvalidOperationException) { continue; }
                    BlockAssert.Equal(type, Oracle.Quantize(type, x, nrows, n, w, refuseAborts: false), ours,
                        $"{kind} rows of {n}, importance {(withImportance ? "on" : "off")} (rows ggml's guard refuses)");
                    continue;
                }
                var actual = new byte[expected.Length];
                QuantKernels.Quantize(type, x, actual, nrows, n, w);
                BlockAssert.Equal(type, expected, actual, $"{kind} rows of {n}, importance {(withImportance ? "on" : "off")}");
            }
        }
    }

    /// <summary>
    /// The activation side of every matmul: each vec-dot type's <see cref="IQuantKernel.QuantizeActivationRow"/> gives
    /// ggml-cpu's <c>from_float</c> bytes, so Squeeze's forward pass multiplies the same activations as llama.cpp's.
    /// </summary>
    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(TypesAndKinds))]
    public void Activation_rows_are_bitwise_equal_to_ggml_cpu_from_float(GgmlType type, RowKind kind)
    {
        if (!KernelTypes().Any(t => QuantKernels.Get(t).VecDotType == type)) return; // not a vec-dot type
        var kernel = QuantKernels.Get(type);
        foreach (int n in Rows.Lengths(GgmlTypes.Get(type).BlockSize))
        {
            var x = Rows.Make(kind, 1, n, seed: n * 41 + (int)kind);
            var expected = Oracle.FromFloat(type, x);
            var actual = new byte[expected.Length];
            kernel.QuantizeActivationRow(x, actual);
            BlockAssert.Equal(type, expected, actual, $"{kind} activation row of {n}");
        }
    }

    /// <summary>
    /// The activation formats, which ggml_quantize_chunk refuses: quantizing a row must give the bytes of
    /// ggml-base's reference quantizer (<c>from_float_ref</c>: quantize_row_q8_1_ref, quantize_row_q8_K_ref).
    /// </summary>
    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(TypesAndKinds))]
    public void Activation_quantize_is_bitwise_equal_to_ggml_from_float_ref(GgmlType type, RowKind kind)
    {
        if (Quantizable(type)) return; // weight formats: checked through ggml_quantize_chunk above
        var traits = GgmlTypes.Get(type);
        var kernel = QuantKernels.Get(type);
        foreach (int n in Rows.Lengths(traits.BlockSize))
        {
            var x = Rows.Make(kind, 1, n, seed: n * 37 + (int)kind);
            var expected = Oracle.FromFloatRef(type, x);
            var actual = new byte[expected.Length];
            kernel.QuantizeRow(x, actual, default);
            BlockAssert.Equal(type, expected, actual, $"{kind} row of {n}, from_float_ref");
        }
    }

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(Types))]
    public void Dequantize_is_bitwise_equal_to_ggml(GgmlType type)
    {
        var traits = GgmlTypes.Get(type);
        if (!Oracle.HasDequantize(type)) Assert.Skip($"ggml has no dequantization of {traits.Name} to compare with");
        int n = Rows.Lengths(traits.BlockSize)[1];
        var sources = new List<byte[]> { RandomBlocks.Make(type, n / traits.BlockSize, seed: 7) };
        if (Quantizable(type) && !QuantKernels.Get(type).RequiresImportance)
            sources.Add(Oracle.Quantize(type, Rows.Make(RowKind.Gaussian, 1, n, 3), 1, n));
        foreach (var q in sources)
        {
            var expected = Oracle.Dequantize(type, q, n);
            var actual = new float[n];
            QuantKernels.Get(type).DequantizeRow(q, actual);
            BlockAssert.BitEqual(expected, actual, $"{traits.Name} dequantize");
        }
    }

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(Types))]
    public void VecDot_agrees_with_ggml(GgmlType type)
    {
        var kernel = QuantKernels.Get(type);
        var traits = GgmlTypes.Get(type);
        if (!Oracle.HasVecDot(type)) Assert.Skip($"ggml-cpu has no vec_dot for {traits.Name} to compare with");
        Assert.Equal(Oracle.VecDotType(type), kernel.VecDotType);
        foreach (int n in Rows.Lengths(Math.Max(traits.BlockSize, GgmlTypes.Get(kernel.VecDotType).BlockSize)))
        {
            var x = RandomBlocks.Make(type, n / traits.BlockSize, seed: n);
            var y = Oracle.FromFloat(kernel.VecDotType, Rows.Make(RowKind.Gaussian, 1, n, seed: n + 1));
            float expected = Oracle.VecDot(type, x, y, n);
            float actual = kernel.VecDot(x, y, n);
            AssertClose(expected, actual, $"{traits.Name} vec_dot n={n}");
        }
    }

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(Types))]
    public void Every_simd_level_agrees_with_the_scalar_reference(GgmlType type)
    {
        var kernel = QuantKernels.Get(type);
        var traits = GgmlTypes.Get(type);
        int n = 4096;
        var x = Rows.Make(RowKind.HeavyTailed, 1, n, seed: 11);
        var w = Rows.Importance(n, seed: 12);
        var q = RandomBlocks.Make(type, n / traits.BlockSize, seed: 13);
        var y = Oracle.FromFloat(kernel.VecDotType, Rows.Make(RowKind.Gaussian, 1, n, seed: 14));

        byte[] refQ; float[] refD; float refDot;
        using (Simd.Override(SimdLevel.Scalar)) (refQ, refD, refDot) = Run();
        foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
        {
            using var _ = Simd.Override(level);
            var (q2, d2, dot2) = Run();
            BlockAssert.Equal(type, refQ, q2, $"quantize at {level}");
            BlockAssert.BitEqual(refD, d2, $"{traits.Name} dequantize at {level}");
            AssertClose(refDot, dot2, $"{traits.Name} vec_dot at {level}");
        }

        (byte[], float[], float) Run()
        {
            var qq = new byte[traits.RowSize(n)];
            if (Quantizable(type)) kernel.QuantizeRow(x, qq, w);
            var dd = new float[n];
            kernel.DequantizeRow(q, dd);
            return (qq, dd, kernel.VecDot(q, y, n));
        }
    }

    internal static void AssertClose(float expected, float actual, string context)
    {
        float tolerance = 1e-6f * Math.Max(1f, Math.Abs(expected));
        if (!(Math.Abs(expected - actual) <= tolerance) && !(float.IsNaN(expected) && float.IsNaN(actual)) && expected != actual)
            Assert.Fail($"{context}: ggml {expected:R}, squeeze {actual:R}");
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SimdCollection
{
    public const string Name = "SIMD level overrides";
}
