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

    /// <summary>
    /// SwiGLU in place: <c>gate = silu(gate) * up</c>, silu(x) = x / (1 + e^-x), vectorized through
    /// TensorPrimitives in slices of 256.
    /// </summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        if (up.Length < gate.Length) throw new ArgumentException("up is shorter than gate", nameof(up));
        Span<float> t = stackalloc float[256];
        for (int i = 0; i < gate.Length; i += t.Length)
        {
            var g = gate.Slice(i, Math.Min(t.Length, gate.Length - i));
            var e = t[..g.Length];
            TensorPrimitives.Negate(g, e);
            TensorPrimitives.Exp(e, e);
            TensorPrimitives.Add(e, 1f, e);
            TensorPrimitives.Divide(g, e, g);
            TensorPrimitives.Multiply(g, up.Slice(i, g.Length), g);
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
}
