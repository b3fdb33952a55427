using Squeeze.Models;
using Xunit;

namespace Squeeze.Oracle.Tests.Models;

/// <summary>
/// Squeeze's rotary embedding against ggml-cpu's <c>ggml_rope_ext</c> (llama.cpp's Q/K rotation) on the same rows:
/// bitwise equal, for both pair layouts, short heads (ggml's scalar loop) and long ones (its vectorized loop).
/// </summary>
public sealed class RopeTests
{
    [Theory]
    [InlineData(RopeStyle.Normal, 8, 8, 10000f)]     // stories260K: head size 8
    [InlineData(RopeStyle.Normal, 64, 64, 10000f)]
    [InlineData(RopeStyle.Normal, 128, 96, 500000f)] // partial rotation: the tail is copied
    [InlineData(RopeStyle.Neox, 8, 8, 10000f)]
    [InlineData(RopeStyle.Neox, 128, 128, 1000000f)]
    public void Rotation_is_bitwise_ggml_rope_ext(RopeStyle style, int headDim, int nDims, float freqBase)
    {
        const int heads = 3, tokens = 300;
        var rng = new Random(headDim * 31 + nDims + (int)style);
        var x = new float[tokens * heads * headDim];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
        var positions = Enumerable.Range(0, tokens).Select(t => t * 7 % 4096).ToArray();
        var expected = Oracle.Rope(x, positions, heads, headDim, nDims, style == RopeStyle.Normal ? 0 : 2, freqBase, 1f, threads: 2);

        var rope = new Rope(style, nDims, freqBase, 1f);
        var cache = new float[nDims];
        var y = (float[])x.Clone();
        for (int t = 0; t < tokens; t++)
        {
            rope.Cache(positions[t], cache);
            for (int h = 0; h < heads; h++) rope.Apply(y.AsSpan((t * heads + h) * headDim, headDim), cache);
        }
        int bad = 0;
        for (int i = 0; i < y.Length; i++)
            if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(expected[i])) bad++;
        Assert.True(bad == 0, $"{style} head {headDim}, n_rot {nDims}: {bad} of {y.Length} values differ from ggml_rope_ext's");
    }
}
