using Squeeze.Numerics;
using Xunit;

namespace Squeeze.Oracle.Tests.Models;

/// <summary>
/// Squeeze's SwiGLU against ggml-cpu's <c>ggml_swiglu_split</c> (llama.cpp's feed-forward gate): bitwise equal on rows
/// with and without a tail past the last 16 elements, with values that reach ggml's e^x overflow and underflow
/// branches, at every SIMD level.
/// </summary>
[Collection(Squeeze.Oracle.Tests.Quants.SimdCollection.Name)]
public sealed class SwiGluTests
{
    [Theory]
    [InlineData(172)]   // stories260K's feed-forward width: 10 x 16 + a tail of 12
    [InlineData(256)]
    [InlineData(7)]     // tail only
    public void SwiGlu_is_bitwise_ggml_swiglu_split(int width)
    {
        // Squeeze reproduces ggml-cpu's AVX-512 build; another oracle build sums and rounds otherwise.
        if (OracleLibrary.Variant != "avx512") Assert.Skip($"the oracle here is ggml-cpu's {OracleLibrary.Variant} build");
        const int rows = 40;
        var rng = new Random(width);
        var gate = new float[rows * width];
        var up = new float[rows * width];
        for (int i = 0; i < gate.Length; i++)
        {
            gate[i] = (float)(rng.NextDouble() * 24 - 12);
            up[i] = (float)(rng.NextDouble() * 4 - 2);
        }
        // e^-x past ggml's |n| > 192 branch both ways, and the edges of float's exponent range.
        gate[3] = 150f; gate[5] = -150f; gate[width + 1] = 89f; gate[width + 2] = -104f; gate[2 * width] = 0f; gate[2 * width + 1] = -0f;
        var expected = Oracle.SwiGlu(gate, up, width, threads: 2);
        foreach (var level in new[] { SimdLevel.Scalar, Simd.Supported })
        {
            using var scope = Simd.Override(level);
            var y = (float[])gate.Clone();
            for (int r = 0; r < rows; r++) VectorOps.SwiGlu(y.AsSpan(r * width, width), up.AsSpan(r * width, width));
            int bad = 0;
            for (int i = 0; i < y.Length; i++)
                if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(expected[i])) bad++;
            Assert.True(bad == 0, $"width {width} at {level}: {bad} of {y.Length} values differ from ggml_swiglu_split's");
        }
    }
}
