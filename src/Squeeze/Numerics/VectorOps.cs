using System.Numerics.Tensors;

namespace Squeeze.Numerics;

/// <summary>The float vector operations of the forward pass, with ggml's accumulation choices where they matter.</summary>
public static class VectorOps
{
    /// <summary>
    /// RMSNorm in place, then multiplied by <paramref name="weight"/>: <c>x * w / sqrt(mean(x^2) + eps)</c>.
    /// The sum of squares accumulates in double, as ggml's <c>rms_norm</c> does.
    /// </summary>
    public static void RmsNorm(Span<float> x, ReadOnlySpan<float> weight, float eps)
    {
        double sum = 0;
        foreach (float v in x) sum += v * v;
        float mean = (float)(sum / x.Length);
        float scale = 1f / MathF.Sqrt(mean + eps);
        TensorPrimitives.Multiply(x, scale, x);
        TensorPrimitives.Multiply(x, weight, x);
    }

    /// <summary>SwiGLU in place: <c>gate = silu(gate) * up</c>, silu(x) = x / (1 + e^-x).</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

    /// <summary>Softmax in place; the normalising sum accumulates in double as ggml's does.</summary>
    public static void Softmax(Span<float> x)
    {
        float max = TensorPrimitives.Max(x);
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float e = MathF.Exp(x[i] - max);
            x[i] = e;
            sum += e;
        }
        TensorPrimitives.Multiply(x, (float)(1.0 / sum), x);
    }

    /// <summary>
    /// −log softmax(logits)[token] as llama-perplexity and llama-imatrix compute it: float maximum, double sum of float
    /// exponentials, then <c>logit − max − log(sum)</c> in double.
    /// </summary>
    public static double NegativeLogSoftmax(ReadOnlySpan<float> logits, int token)
    {
        float max = logits[0];
        for (int i = 1; i < logits.Length; i++) max = Math.Max(max, logits[i]);
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += MathF.Exp(logits[i] - max);
        return -((double)(logits[token] - max) - Math.Log(sum));
    }
}
