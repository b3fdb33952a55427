using System.Runtime.InteropServices;
using Squeeze.Gguf;
using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Models;

/// <summary>The shape and storage of a random-weight model.</summary>
public sealed record SyntheticModelOptions
{
    public ArchitectureSpec Spec { get; init; } = ArchitectureSpec.Qwen3;
    public int VocabSize { get; init; } = 512;
    public int EmbeddingLength { get; init; } = 256;
    public int LayerCount { get; init; } = 2;
    public int HeadCount { get; init; } = 4;
    public int KvHeadCount { get; init; } = 2;
    /// <summary>Head size; 0 means n_embd / n_head.</summary>
    public int HeadDim { get; init; }
    public int FeedForwardLength { get; init; } = 768;
    public int ContextLength { get; init; } = 256;
    public float RopeFreqBase { get; init; } = 10000f;
    /// <summary>No <c>output.weight</c>: the output projection reuses the token embeddings.</summary>
    public bool TiedOutput { get; init; }
    /// <summary>The type of every 2-D weight (1-D norms and biases stay F32).</summary>
    public GgmlType WeightType { get; init; } = GgmlType.F32;
    public int Seed { get; init; } = 1;
    public string Name { get; init; } = "synthetic";
}

/// <summary>
/// Writes random-weight GGUF models that llama.cpp loads: every architecture Squeeze runs, any shape, any weight type
/// with kernels. Layer weights are Gaussian with standard deviation 1/sqrt(fan-in), so activations stay of order one;
/// embeddings and output rows have unit scale, so the logits are far from uniform. The vocabulary is a minimal SentencePiece one (control tokens, the 256 byte tokens, then
/// filler pieces). For tests, benchmarks and the demo; the weights mean nothing.
/// </summary>
public static class SyntheticModel
{
    public static void Write(string path, SyntheticModelOptions o)
    {
        if (o.VocabSize < 259 + 3) throw new ArgumentException("the vocabulary needs room for 3 control tokens and 256 byte tokens", nameof(o));
        int headDim = o.HeadDim > 0 ? o.HeadDim : o.EmbeddingLength / o.HeadCount;
        var arch = o.Spec.Name;
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Architecture, GgufValue.String(arch));
        w.Set(GgufKeys.General.Name, GgufValue.String(o.Name));
        w.Set(GgufKeys.Arch.ContextLength(arch), GgufValue.UInt32((uint)o.ContextLength));
        w.Set(GgufKeys.Arch.EmbeddingLength(arch), GgufValue.UInt32((uint)o.EmbeddingLength));
        w.Set(GgufKeys.Arch.BlockCount(arch), GgufValue.UInt32((uint)o.LayerCount));
        w.Set(GgufKeys.Arch.FeedForwardLength(arch), GgufValue.UInt32((uint)o.FeedForwardLength));
        w.Set(GgufKeys.Arch.AttentionHeadCount(arch), GgufValue.UInt32((uint)o.HeadCount));
        w.Set(GgufKeys.Arch.AttentionHeadCountKv(arch), GgufValue.UInt32((uint)o.KvHeadCount));
        if (headDim != o.EmbeddingLength / o.HeadCount)
        {
            w.Set(GgufKeys.Arch.AttentionKeyLength(arch), GgufValue.UInt32((uint)headDim));
            w.Set(GgufKeys.Arch.AttentionValueLength(arch), GgufValue.UInt32((uint)headDim));
        }
        w.Set(GgufKeys.Arch.RopeDimensionCount(arch), GgufValue.UInt32((uint)headDim));
        w.Set(GgufKeys.Arch.RopeFreqBase(arch), GgufValue.Float32(o.RopeFreqBase));
        w.Set(GgufKeys.Arch.AttentionLayerNormRmsEpsilon(arch), GgufValue.Float32(1e-6f));
        w.Set(GgufKeys.General.FileType, GgufValue.UInt32(FileTypeOf(o.WeightType)));
        AddVocabulary(w, o.VocabSize);

        var rng = new Random(o.Seed);
        int embd = o.EmbeddingLength, qDim = headDim * o.HeadCount, kvDim = headDim * o.KvHeadCount, ff = o.FeedForwardLength;
        Matrix(w, TensorRole.TokenEmbd.TensorName(), embd, o.VocabSize, 1f, o.WeightType, rng);
        Vector(w, TensorRole.OutputNorm.TensorName(), embd, 1f, 0.1f, rng);
        // Output rows of unit scale (as tied embeddings are) give logits spread like a trained model's; at 1/sqrt(n_embd)
        // they would be nearly uniform, and the argmax of nearly tied logits means nothing.
        if (!o.TiedOutput) Matrix(w, TensorRole.Output.TensorName(), embd, o.VocabSize, 1f, o.WeightType, rng);
        for (int l = 0; l < o.LayerCount; l++)
        {
            Vector(w, TensorRole.AttnNorm.TensorName(l), embd, 1f, 0.1f, rng);
            Matrix(w, TensorRole.AttnQ.TensorName(l), embd, qDim, 1f / MathF.Sqrt(embd), o.WeightType, rng);
            Matrix(w, TensorRole.AttnK.TensorName(l), embd, kvDim, 1f / MathF.Sqrt(embd), o.WeightType, rng);
            Matrix(w, TensorRole.AttnV.TensorName(l), embd, kvDim, 1f / MathF.Sqrt(embd), o.WeightType, rng);
            if (o.Spec.QkvBias)
            {
                Vector(w, TensorRole.AttnQ.TensorName(l, "bias"), qDim, 0f, 0.1f, rng);
                Vector(w, TensorRole.AttnK.TensorName(l, "bias"), kvDim, 0f, 0.1f, rng);
                Vector(w, TensorRole.AttnV.TensorName(l, "bias"), kvDim, 0f, 0.1f, rng);
            }
            if (o.Spec.QkNorm)
            {
                Vector(w, TensorRole.AttnQNorm.TensorName(l), headDim, 1f, 0.1f, rng);
                Vector(w, TensorRole.AttnKNorm.TensorName(l), headDim, 1f, 0.1f, rng);
            }
            Matrix(w, TensorRole.AttnOutput.TensorName(l), qDim, embd, 1f / MathF.Sqrt(qDim), o.WeightType, rng);
            Vector(w, TensorRole.FfnNorm.TensorName(l), embd, 1f, 0.1f, rng);
            Matrix(w, TensorRole.FfnGate.TensorName(l), embd, ff, 1f / MathF.Sqrt(embd), o.WeightType, rng);
            Matrix(w, TensorRole.FfnDown.TensorName(l), ff, embd, 1f / MathF.Sqrt(ff), o.WeightType, rng);
            Matrix(w, TensorRole.FfnUp.TensorName(l), embd, ff, 1f / MathF.Sqrt(embd), o.WeightType, rng);
        }
        w.WriteTo(path);
    }

    /// <summary>llama.cpp's file type for a model whose weights are all <paramref name="type"/> (for <c>general.file_type</c>).</summary>
    private static uint FileTypeOf(GgmlType type) => type switch
    {
        GgmlType.F32 => 0,
        GgmlType.F16 => 1,
        GgmlType.Q4_0 => 2,
        GgmlType.Q4_1 => 3,
        GgmlType.Q8_0 => 7,
        GgmlType.Q5_0 => 8,
        GgmlType.Q5_1 => 9,
        GgmlType.BF16 => 32,
        _ => 1024, // llama.cpp's "guessed": a mix it does not name
    };

    private static void AddVocabulary(GgufWriter w, int n)
    {
        var tokens = new string[n];
        var scores = new float[n];
        var types = new int[n];
        tokens[0] = "<unk>"; types[0] = 2;
        tokens[1] = "<s>"; types[1] = 3;
        tokens[2] = "</s>"; types[2] = 3;
        for (int b = 0; b < 256; b++) { tokens[3 + b] = $"<0x{b:X2}>"; types[3 + b] = 6; }
        for (int i = 259; i < n; i++) { tokens[i] = $"\u2581t{i}"; types[i] = 1; scores[i] = -i; }
        w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("llama"));
        w.Set(GgufKeys.Tokenizer.Tokens, GgufValue.Array(GgufArray.Of(tokens)));
        w.Set(GgufKeys.Tokenizer.Scores, GgufValue.Array(GgufArray.Of(scores)));
        w.Set(GgufKeys.Tokenizer.TokenType, GgufValue.Array(GgufArray.Of(types)));
        w.Set(GgufKeys.Tokenizer.UnknownId, GgufValue.UInt32(0));
        w.Set(GgufKeys.Tokenizer.BosId, GgufValue.UInt32(1));
        w.Set(GgufKeys.Tokenizer.EosId, GgufValue.UInt32(2));
    }

    private static void Vector(GgufWriter w, string name, int n, float mean, float std, Random rng)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = mean + std * Gaussian(rng);
        w.AddTensor(name, GgmlType.F32, [n], MemoryMarshal.AsBytes(x.AsSpan()).ToArray());
    }

    /// <summary>A <paramref name="cols"/> x <paramref name="rows"/> weight (ggml order), generated and converted row block by row block while writing.</summary>
    private static void Matrix(GgufWriter w, string name, int cols, int rows, float std, GgmlType type, Random rng)
    {
        int seed = rng.Next();
        w.AddTensor(name, type, [cols, rows], stream =>
        {
            var local = new Random(seed);
            const int block = 64;
            var x = new float[block * cols];
            int rowSize = checked((int)GgmlTypes.RowSize(type, cols));
            var bytes = new byte[block * rowSize];
            for (int r = 0; r < rows; r += block)
            {
                int n = Math.Min(block, rows - r);
                for (int i = 0; i < n * cols; i++) x[i] = std * Gaussian(local);
                QuantKernels.Quantize(type, x.AsSpan(0, n * cols), bytes, n, cols);
                stream.Write(bytes, 0, n * rowSize);
            }
        });
    }

    private static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}
