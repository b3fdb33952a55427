using Squeeze.Gguf;
using Squeeze.Models;
using Squeeze.Numerics;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Models;

/// <summary>
/// Squeeze's matrix product (<see cref="MatMul"/>) against ggml-cpu's <c>ggml_mul_mat</c> on one graph, with the weight in
/// a plain CPU tensor, or in the CPU_REPACK buffer where llama.cpp puts it (Q4_0 and IQ4_NL with rows a multiple of 8,
/// see <see cref="RepackTests"/>): one token takes vec_dot, a batch takes llamafile's tinyBLAS for the types and shapes it serves
/// (F32/F16/BF16 rows of a multiple of 16 and a multiple of 4 rows; Q8_0, Q4_0, Q5_0 and IQ4_NL always) and vec_dot for
/// the rest. Every output must be bitwise llama.cpp's, at every SIMD level.
/// </summary>
[Collection(Squeeze.Oracle.Tests.Quants.SimdCollection.Name)]
public sealed class MatMulTests(ITestOutputHelper output)
{
    public static TheoryData<string, int, int, int> Cases()
    {
        var data = new TheoryData<string, int, int, int>();
        foreach (var type in new[] { "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "IQ4_NL" })
        {
            // weight rows, columns, tokens
            data.Add(type, 64, 64, 1);      // one token: vec_dot
            data.Add(type, 64, 64, 2);      // the smallest batch tinyBLAS takes
            data.Add(type, 32, 64, 37);     // stories260K's attn_k in a ragged batch
            data.Add(type, 172, 64, 13);    // stories260K's ffn_up: rows a multiple of 4, not of 8
            data.Add(type, 30, 96, 11);     // rows not a multiple of 4: tinyBLAS refuses floats; odd block count
            data.Add(type, 68, 256, 70);    // more tokens than one tile row
        }
        foreach (var type in new[] { "F32", "F16", "BF16" })
            data.Add(type, 64, 172, 9);     // rows of 172: not a multiple of 16, so vec_dot
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Product_is_bitwise_ggml_mul_mat(string typeName, int rows, int cols, int n)
    {
        // Squeeze reproduces ggml-cpu's AVX-512 build; another oracle build sums and rounds otherwise.
        if (OracleLibrary.Variant != "avx512") Assert.Skip($"the oracle here is ggml-cpu's {OracleLibrary.Variant} build");
        Assert.True(GgmlTypes.TryParse(typeName, out var type));
        var rng = new Random(rows * 7919 + cols * 31 + n + (int)type * 1000);
        var kernel = QuantKernels.Get(type);
        int rowSize = checked((int)GgmlTypes.RowSize(type, cols));
        var weights = new byte[rows * rowSize];
        var src = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < cols; i++) src[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 7 == 3 ? 4f : 1f);
            kernel.QuantizeRow(src, weights.AsSpan(r * rowSize, rowSize), default);
        }
        var x = new float[n * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 11 == 5 ? 3f : 1f);

        var w = new Weight(new GgufTensorInfo("w.weight", type, [cols, rows], 0), TensorRole.AttnQ, 0, weights);
        // Weights llama.cpp repacks by default (Q4_0 and IQ4_NL with rows a multiple of 8) are compared with ggml's
        // CPU_REPACK product, the one llama.cpp runs; RepackTests covers those kernels in depth.
        var expected = RepackedMatMul.Applies(w)
            ? Oracle.RepackedMatMul(type, weights, rows, cols, x, n, threads: 2)
            : Oracle.MatMul(type, weights, rows, cols, x, n, threads: 2);
        var y = Product(w, x, n);
        Report(typeName, rows, cols, n, Simd.Supported, y, expected);

        // Squeeze's scalar references of vec_dot follow ggml's generic C code, not its AVX build; tinyBLAS's order has one
        // reference only, the AVX-512 build's, which the AVX2 and scalar paths must give bit for bit.
        if (TinyBlas.Serves(type, rows, cols, n))
            foreach (var level in new[] { SimdLevel.Avx2, SimdLevel.Scalar })
                if (Simd.IsSupported(level) && level != Simd.Supported)
                    using (Simd.Override(level))
                        Report(typeName, rows, cols, n, level, Product(w, x, n), expected);
    }

    private static float[] Product(Weight w, float[] x, int n)
    {
        var y = new float[n * w.Rows];
        new MatMul(threads: 2).Run(w, x, n, y);
        return y;
    }

    private void Report(string typeName, int rows, int cols, int n, SimdLevel level, float[] y, float[] expected)
    {
        int bad = 0;
        double worst = 0;
        for (int i = 0; i < y.Length; i++)
            if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(expected[i]))
            {
                bad++;
                worst = Math.Max(worst, Math.Abs(y[i] - expected[i]) / Math.Max(Math.Abs(expected[i]), 1e-30));
            }
        output.WriteLine($"{typeName} {rows}x{cols} n={n} {level}: {bad} of {y.Length} differ, worst {worst:E2} relative");
        Assert.True(bad == 0, $"{typeName} {rows}x{cols} n={n} at {level}: {bad} of {y.Length} outputs differ from ggml_mul_mat's (worst {worst:E2} relative)");
    }
}
