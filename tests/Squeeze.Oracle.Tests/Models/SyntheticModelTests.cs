using Squeeze.Models;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Models;

/// <summary>
/// Random-weight models of every architecture, weight type, GQA ratio and output tying: Squeeze's logits against
/// llama.cpp's on the same file, for a 64-token prompt processed as one batch and token by token (each way by both).
/// </summary>
public sealed class SyntheticModelTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-synthetic-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, GgmlType, int, bool> Cases() => new()
    {
        { "llama", GgmlType.F32, 1, false }, { "qwen2", GgmlType.F32, 2, true }, { "qwen3", GgmlType.F32, 4, false },
        { "llama", GgmlType.F16, 4, true }, { "qwen2", GgmlType.F16, 1, false }, { "qwen3", GgmlType.F16, 2, true },
        { "llama", GgmlType.BF16, 2, false }, { "qwen3", GgmlType.BF16, 1, true },
        { "llama", GgmlType.Q8_0, 4, false }, { "qwen2", GgmlType.Q8_0, 2, false }, { "qwen3", GgmlType.Q8_0, 1, true },
        { "llama", GgmlType.Q4_K, 2, true }, { "qwen3", GgmlType.Q4_K, 4, false },
        { "qwen2", GgmlType.Q6_K, 4, false }, { "llama", GgmlType.Q6_K, 1, false },
        { "qwen3", GgmlType.IQ4_NL, 2, false }, { "llama", GgmlType.IQ4_NL, 4, true },
        { "llama", GgmlType.IQ3_S, 2, false }, { "qwen3", GgmlType.IQ3_S, 4, true },
        // Beyond the list: the other types llama.cpp repacks on x86 (Q2_K with AVX-512).
        { "qwen3", GgmlType.Q2_K, 2, false }, { "llama", GgmlType.Q4_0, 1, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_match_llama_cpp(string architecture, GgmlType type, int gqa, bool tied)
    {
        if (QuantKernels.Find(type) is null) Assert.Skip($"Squeeze has no {type} kernels yet");
        var spec = ArchitectureSpec.Find(architecture)!;
        var path = Path.Combine(_dir, $"{architecture}-{type}-{gqa}-{tied}.gguf");
        SyntheticModel.Write(path, new SyntheticModelOptions
        {
            Spec = spec, WeightType = type, HeadCount = 4, KvHeadCount = 4 / gqa, TiedOutput = tied,
            EmbeddingLength = 256, FeedForwardLength = 512, LayerCount = 2, VocabSize = 512, Seed = (int)type * 7 + gqa,
        });
        using var model = TransformerModel.Load(path);
        Assert.Equal(tied, model.TiedOutput);
        var tokens = LogitsTests.Prompt(model.Hparams.VocabSize, 64, bos: 1, seed: gqa);
        using var oracle = new OracleModel(path, contextSize: 128, batchSize: 64);
        var expected = oracle.Decode(tokens, 0, allLogits: true);
        // llama.cpp with flash attention off computes attention with other fp16 roundings: how far llama.cpp is from itself.
        using var oracleNoFlash = new OracleModel(path, contextSize: 128, batchSize: 64, flashAttention: 0);
        double selfAgreement = ArgmaxAgreement(expected, oracleNoFlash.Decode(tokens, 0, allLogits: true), model.Hparams.VocabSize);

        var batched = new Transformer(model, contextSize: 128, threads: 2).Evaluate(tokens);
        var stepwise = new Transformer(model, contextSize: 128, threads: 2);
        var oneByOne = new float[batched.Length];
        for (int i = 0; i < tokens.Length; i++)
            stepwise.Evaluate([tokens[i]], startPosition: i).CopyTo(oneByOne, i * model.Hparams.VocabSize);

        // llama.cpp's attention takes other arithmetic for one token than for a batch of 64 (see Attention): Squeeze's
        // token-by-token logits are compared with llama.cpp's token-by-token logits.
        oracle.ClearCache();
        var expectedOneByOne = new float[batched.Length];
        for (int i = 0; i < tokens.Length; i++)
            oracle.Decode([tokens[i]], i, allLogits: false).CopyTo(expectedOneByOne, i * model.Hparams.VocabSize);

        foreach (var (name, actual) in new[] { ("batched", batched), ("token by token", oneByOne) })
        {
            if (name != "batched") expected = expectedOneByOne;
            output.WriteLine($"{name}: max |Δ| {MaxDiff(expected, actual):E3} (max |logit| {MaxAbs(expected):F2}), argmax agreement {ArgmaxAgreement(expected, actual, model.Hparams.VocabSize):P1}");
            // The bar: 1e-3 of the largest logit for F32 and F16 weights; the same argmax for the others (BF16's
            // 8-bit mantissa makes its activations quantized too).
            if (type is GgmlType.F32 or GgmlType.F16)
            {
                double error = LogitsTests.RelativeError(expected, actual);
                Assert.True(error <= 1e-3, $"{name}: max |Δ| / max |logit| = {error:E3}");
            }
            else
            {
                // The bar is 99%. On random-weight models with quantized weights llama.cpp's two attention paths
                // already disagree at a few positions (measured: its logits with and without flash attention differ by up
                // to one logit); Squeeze must agree with llama.cpp at least as well as llama.cpp agrees with itself.
                double agreement = ArgmaxAgreement(expected, actual, model.Hparams.VocabSize);
                double bar = Math.Min(0.99, selfAgreement);
                Assert.True(agreement >= bar,
                    $"{name}: argmax agrees at {agreement:P1} of positions; llama.cpp with and without flash attention agree at {selfAgreement:P1}");
            }
        }
    }

    private static double MaxDiff(float[] a, float[] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    private static double MaxAbs(float[] a) => a.Max(x => Math.Abs((double)x));

    private static double ArgmaxAgreement(float[] expected, float[] actual, int vocab)
    {
        int rows = expected.Length / vocab, same = 0;
        for (int r = 0; r < rows; r++)
        {
            var e = expected.AsSpan(r * vocab, vocab);
            var a = actual.AsSpan(r * vocab, vocab);
            if (e.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(e)) == a.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(a))) same++;
        }
        return (double)same / rows;
    }
}
