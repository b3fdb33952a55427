using Squeeze.Models;
using Squeeze.Numerics;
using Xunit;

namespace Squeeze.Oracle.Tests.Models;

/// <summary>
/// Squeeze's attention against ggml-cpu's <c>ggml_flash_attn_ext</c> (the kernel llama.cpp runs by default) on the same
/// fp16 cache, queries and mask: bitwise equal outputs on each of ggml's three paths (per cell, tiled, split across
/// threads), at every SIMD level.
/// </summary>
[Collection(Squeeze.Oracle.Tests.Quants.SimdCollection.Name)]
public sealed class AttentionTests(ITestOutputHelper output)
{
    public static TheoryData<int, int, int, int, int> Cases() => new()
    {
        // tokens in the batch, cells already cached, heads, key/value heads, head size
        { 1, 0, 4, 4, 64 },       // first token: per cell
        { 1, 40, 8, 2, 128 },     // decoding: per cell
        { 7, 20, 4, 1, 64 },      // small batch: per cell
        { 5, 3, 4, 2, 80 },       // head size with a tail beyond 64
        { 64, 0, 4, 2, 64 },      // a full query tile: tiled
        { 100, 37, 6, 2, 128 },   // tiled, partial KV tiles, GQA 3
        { 70, 10, 4, 4, 48 },     // tiled with a head size that is not a multiple of 64
        { 1, 600, 4, 2, 64 },     // one token over more than 512 padded cells: split across threads
        { 1, 300, 8, 8, 128 },    // split, the last chunk partly empty
        { 128, 0, 8, 4, 8 },      // stories260K: a 128-token chunk, head size 8
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Output_is_bitwise_ggml_flash_attention(int tokens, int cached, int heads, int kvHeads, int headDim)
    {
        const int threads = 2;
        int kvDim = kvHeads * headDim, qDim = heads * headDim;
        var rng = new Random(tokens * 1000 + cached * 7 + headDim);
        var cache = new KvCache(layers: 1, kvDim, capacity: cached + tokens + 8);
        // A second sequence interleaved with the first checks the mask; its cells must not count.
        var k = new float[kvDim];
        var v = new float[kvDim];
        int pos0 = 0, pos1 = 0;
        for (int i = 0; i < cached; i++)
        {
            int seq = i % 5 == 3 ? 1 : 0;
            int cell = cache.Allocate(seq, seq == 0 ? pos0++ : pos1++);
            Fill(rng, k, 2f);
            Fill(rng, v, 1f);
            cache.Store(0, cell, k, v);
        }
        var batch = new BatchToken[tokens];
        for (int i = 0; i < tokens; i++)
        {
            batch[i] = new BatchToken(0, pos0++, 0);
            Fill(rng, k, 2f);
            Fill(rng, v, 1f);
            cache.Store(0, cache.Allocate(0, batch[i].Position), k, v);
        }
        var q = new float[tokens * qDim];
        Fill(rng, q, 2f);

        int cells = cache.PaddedLength;
        var kBits = new ushort[cells * kvDim];
        var vBits = new ushort[cells * kvDim];
        cache.KeyData(0).AsSpan(0, cache.Capacity * kvDim).CopyTo(kBits);
        cache.ValueData(0).AsSpan(0, cache.Capacity * kvDim).CopyTo(vBits);
        var mask = new ushort[tokens * cells];
        Array.Fill(mask, (ushort)0xFC00); // -inf
        for (int t = 0; t < tokens; t++)
            for (int c = 0; c < cache.Capacity; c++)
                if (cache.CellSequences[c] == 0 && cache.CellPositions[c] <= batch[t].Position) mask[t * cells + c] = 0;
        var expected = Oracle.FlashAttention(q, kBits, vBits, mask, tokens, cells, heads, kvHeads, headDim, 1f / MathF.Sqrt(headDim), threads);

        Assert.Contains(expected, x => x != 0f);
        Assert.All(expected, x => Assert.True(float.IsFinite(x)));
        var plain = PlainAttention(cache, batch, q, heads, kvHeads, headDim);
        output.WriteLine($"plain softmax attention (Squeeze before): max |Δ| vs ggml {MaxDiff(plain, expected):E3}");

        var attention = new Attention(heads, kvHeads, headDim, threads);
        foreach (var level in new[] { SimdLevel.Scalar, Simd.Supported })
        {
            using var scope = Simd.Override(level);
            var actual = new float[tokens * qDim];
            attention.Run(cache, 0, batch, q, actual);
            double maxDiff = 0;
            int mismatches = 0;
            for (int i = 0; i < actual.Length; i++)
            {
                if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i])) mismatches++;
                maxDiff = Math.Max(maxDiff, Math.Abs(actual[i] - expected[i]));
            }
            Assert.True(mismatches == 0,
                $"{level}, path {attention.Choose(tokens, cells)}: {mismatches} of {actual.Length} outputs differ from ggml's, max |Δ| {maxDiff:E3}");
        }
    }

    private static double MaxDiff(float[] a, float[] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    /// <summary>Attention as Squeeze computed it before matching ggml: fp16 queries, f32 dots, a softmax, f32 values.</summary>
    private static float[] PlainAttention(KvCache cache, BatchToken[] batch, float[] q, int heads, int kvHeads, int headDim)
    {
        int kvDim = kvHeads * headDim, qDim = heads * headDim, group = heads / kvHeads;
        var result = new float[batch.Length * qDim];
        for (int t = 0; t < batch.Length; t++)
            for (int h = 0; h < heads; h++)
            {
                var cells = Enumerable.Range(0, cache.Capacity)
                    .Where(c => cache.CellSequences[c] == batch[t].Sequence && cache.CellPositions[c] <= batch[t].Position).ToArray();
                var scores = new float[cells.Length];
                for (int i = 0; i < cells.Length; i++)
                {
                    float s = 0;
                    for (int d = 0; d < headDim; d++)
                        s += Fp16.Round(q[t * qDim + h * headDim + d]) * Fp16.ToFloat(cache.KeyData(0)[cells[i] * kvDim + h / group * headDim + d]);
                    scores[i] = s / MathF.Sqrt(headDim);
                }
                VectorOps.Softmax(scores);
                for (int i = 0; i < cells.Length; i++)
                    for (int d = 0; d < headDim; d++)
                        result[t * qDim + h * headDim + d] += scores[i] * Fp16.ToFloat(cache.ValueData(0)[cells[i] * kvDim + h / group * headDim + d]);
            }
        return result;
    }

    private static void Fill(Random rng, float[] x, float scale)
    {
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
    }
}
