using Squeeze.Models;
using Squeeze.Tests;
using Xunit;

namespace Squeeze.Oracle.Tests.Models;

/// <summary>Squeeze's logits against llama.cpp's on the same file.</summary>
public class LogitsTests
{
    /// <summary>max |a - b| / max |b| over all logits.</summary>
    internal static double RelativeError(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double maxDiff = 0, maxAbs = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs(expected[i] - actual[i]));
            maxAbs = Math.Max(maxAbs, Math.Abs(expected[i]));
        }
        return maxDiff / maxAbs;
    }

    internal static int[] Prompt(int vocab, int length, int bos, int seed)
    {
        var rng = new Random(seed);
        var tokens = new int[length];
        tokens[0] = bos;
        for (int i = 1; i < length; i++) tokens[i] = rng.Next(3, vocab);
        return tokens;
    }

    public static TheoryData<string> RealModels() => new("models/stories260K.gguf", "models/tiny-qwen3-5M-F32.gguf", "models/tiny-qwen3-5M-F16.gguf");

    [Theory]
    [MemberData(nameof(RealModels))]
    public void Prompt_logits_match_llama_cpp(string relative)
    {
        var path = TestData.Require(relative);
        using var model = TransformerModel.Load(path);
        var tokens = Prompt(model.Hparams.VocabSize, 64, bos: 1, seed: 5);
        using var oracle = new OracleModel(path, contextSize: 128, batchSize: 64);
        var expected = oracle.Decode(tokens, 0, allLogits: true);

        var batched = new Transformer(model, contextSize: 128, threads: 2).Evaluate(tokens);
        Assert.True(RelativeError(expected, batched) <= 1e-3, $"batched: relative error {RelativeError(expected, batched):E3}");
        // Stronger than the bar: these F32/F16 models take no repacked kernel, and Squeeze's batched products,
        // RoPE, SwiGLU and attention round as ggml-cpu's AVX-512 build does, so the batch's logits are llama.cpp's bits
        // (where the oracle is that build).
        if (OracleLibrary.Variant == "avx512")
        {
            int differ = 0;
            for (int i = 0; i < expected.Length; i++) if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(batched[i])) differ++;
            Assert.True(differ == 0, $"batched: {differ} of {expected.Length} logits differ from llama.cpp's bits");
        }

        var t = new Transformer(model, contextSize: 128, threads: 2);
        var oneByOne = new float[batched.Length];
        for (int i = 0; i < tokens.Length; i++)
            t.Evaluate([tokens[i]], startPosition: i).CopyTo(oneByOne, i * model.Hparams.VocabSize);
        Assert.True(RelativeError(expected, oneByOne) <= 1e-3, $"token by token: relative error {RelativeError(expected, oneByOne):E3}");
    }
}

public class GenerationTests
{
    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    [Fact]
    public void Greedy_generation_from_BOS_equals_llama_cpp_for_200_tokens()
    {
        var path = TestData.StoriesModel;
        using var model = TransformerModel.Load(path);
        using var oracle = new OracleModel(path, contextSize: 256, batchSize: 8);
        var squeeze = new Transformer(model, contextSize: 256, threads: 2);
        int ours = 1, theirs = 1;
        var ourTokens = new List<int>();
        var theirTokens = new List<int>();
        for (int pos = 0; pos < 200; pos++)
        {
            ours = ArgMax(squeeze.Evaluate([ours], pos));
            theirs = ArgMax(oracle.Decode([theirs], pos, allLogits: false));
            ourTokens.Add(ours);
            theirTokens.Add(theirs);
        }
        Assert.Equal(theirTokens, ourTokens);
    }

    [Fact]
    public void Kv_cached_decoding_equals_uncached_recomputation()
    {
        using var model = TransformerModel.Load(TestData.QwenF32Model);
        var tokens = LogitsTests.Prompt(model.Hparams.VocabSize, 24, bos: 1, seed: 9);
        int vocab = model.Hparams.VocabSize;
        var cached = new Transformer(model, contextSize: 64, threads: 2);
        cached.Evaluate(tokens[..16]);
        var incremental = cached.Evaluate(tokens[16..], startPosition: 16);
        var full = new Transformer(model, contextSize: 64, threads: 2).Evaluate(tokens);
        Assert.Equal(full.AsSpan(16 * vocab).ToArray(), incremental);

        // Rolling the sequence back frees its cells from position 16; decoding the same tokens again reuses them.
        cached.Cache.RemoveSequence(0, fromPosition: 16);
        Assert.Equal(16, cached.Cache.Used);
        Assert.Equal(incremental, cached.Evaluate(tokens[16..], startPosition: 16));
    }
}
