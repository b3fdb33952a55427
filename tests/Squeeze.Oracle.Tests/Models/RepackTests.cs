using Squeeze.Numerics;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Models;

/// <summary>
/// Squeeze's reproduction of ggml-cpu's repacked matrix products (<see cref="Repack"/>) against <c>ggml_mul_mat</c> with the
/// weight in ggml-cpu's CPU_REPACK buffer: bitwise equal outputs for one activation row (gemv), a few (gemv), groups of
/// four (gemm) with a gemv tail, at every SIMD level.
/// </summary>
public sealed unsafe class RepackTests(ITestOutputHelper output)
{
    public static TheoryData<GgmlType, int, int, int> Cases() => new()
    {
        // type, weight rows, row length, activation rows
        { GgmlType.Q4_K, 64, 512, 1 }, { GgmlType.Q4_K, 40, 768, 3 }, { GgmlType.Q4_K, 64, 512, 4 },
        { GgmlType.Q4_K, 48, 256, 7 }, { GgmlType.Q4_K, 32, 1024, 70 },
        { GgmlType.IQ4_NL, 64, 512, 1 }, { GgmlType.IQ4_NL, 24, 320, 6 }, { GgmlType.IQ4_NL, 32, 256, 67 },
        { GgmlType.Q4_0, 64, 512, 1 }, { GgmlType.Q4_0, 40, 256, 9 },
        { GgmlType.MXFP4, 32, 256, 1 }, { GgmlType.MXFP4, 16, 512, 13 },
        { GgmlType.Q2_K, 64, 512, 1 }, { GgmlType.Q2_K, 40, 768, 3 }, { GgmlType.Q2_K, 32, 1024, 70 },
        // ggml's threads take chunks of 16 rows or more here: its 512-bit gemm loops, not only the 8-row remainder.
        { GgmlType.Q4_K, 256, 512, 8 }, { GgmlType.Q4_K, 264, 256, 21 }, { GgmlType.IQ4_NL, 256, 256, 8 }, { GgmlType.Q4_0, 256, 256, 20 },
        { GgmlType.Q2_K, 256, 256, 8 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Output_is_bitwise_ggml_repacked_mul_mat(GgmlType type, int rows, int cols, int n)
    {
        Assert.True(Repack.Applies(type, rows), $"this CPU does not repack {type}");
        var rng = new Random((int)type * 1000 + rows + n);
        var wf = new float[rows * cols];
        for (int i = 0; i < wf.Length; i++) wf[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 97 == 0 ? 4 : 1);
        byte[] weight = Oracle.Quantize(type, wf, rows, cols);
        var x = new float[n * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        // Rows where -amax precedes +amax in a super-block: ggml's four-row Q8_K quantizer picks the other sign for the
        // scale than from_float (which Squeeze uses for every row); the products must come out the same.
        for (int t = 0; t < n; t += 2)
        {
            x[t * cols + 5] = -3f;
            x[t * cols + 100] = 3f;
        }
        if (n > 1) Array.Clear(x, cols, Math.Min(cols, 256)); // an all-zero super-block

        float[] expected = Oracle.RepackedMatMul(type, weight, rows, cols, x, n, threads: 2);
        foreach (var level in new[] { SimdLevel.Scalar, SimdLevel.Avx2, SimdLevel.Avx512 }.Where(Simd.IsSupported))
        {
            using var _ = Simd.Override(level);
            float[] actual = Multiply(type, weight, rows, cols, x, n);
            int mismatches = 0;
            double worst = 0;
            for (int i = 0; i < expected.Length; i++)
            {
                if (BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i])) continue;
                if (mismatches++ == 0) output.WriteLine($"{level}: first difference at token {i / rows}, row {i % rows}: {actual[i]:R} vs {expected[i]:R}");
                worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]));
            }
            Assert.True(mismatches == 0, $"{level}: {mismatches} of {expected.Length} outputs differ from ggml's, max |Δ| {worst:E3}");
        }
    }

    // What MatMul does for a repacked weight, on one thread: quantize the activation rows, then multiply.
    private static float[] Multiply(GgmlType type, byte[] weight, int rows, int cols, float[] x, int n)
    {
        int actRowSize = (int)GgmlTypes.RowSize(Repack.ActivationType(type), cols);
        var act = new byte[actRowSize * n];
        for (int t = 0; t < n; t++) Repack.QuantizeActivationRow(type, x.AsSpan(t * cols, cols), act.AsSpan(t * actRowSize, actRowSize));
        var y = new float[n * rows];
        fixed (byte* pw = weight)
        fixed (byte* pa = act)
        fixed (float* py = y)
            Repack.Multiply(type, pw, weight.Length / rows, rows, pa, actRowSize, 0, n, n - n % 4, cols, py, rows);
        return y;
    }
}
