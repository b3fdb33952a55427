using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    /// SwiGLU in place: <c>gate = silu(gate) * up</c>, silu(x) = x / (1 + e^-x), as ggml-cpu's AVX-512 build computes it
    /// (<c>ggml_vec_swiglu_f32</c>): sixteen elements at a time with ggml's polynomial e^x (<see cref="ExpGgml(Vector512{float})"/>), the
    /// tail of the row with the C library's <c>expf</c>. Every SIMD level gives the same bits.
    /// </summary>
    public static unsafe void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        if (up.Length < gate.Length) throw new ArgumentException("up is shorter than gate", nameof(up));
        int i = 0, n = gate.Length;
        if (Simd.Level >= SimdLevel.Avx512 && Avx512F.IsSupported)
        {
            fixed (float* g = gate)
            fixed (float* u = up)
                for (; i + 15 < n; i += 16)
                {
                    var x = Vector512.Load(g + i);
                    var silu = Avx512F.Divide(x, Avx512F.Add(Vector512.Create(1f), ExpGgml(Avx512F.Subtract(Vector512<float>.Zero, x))));
                    Avx512F.Multiply(silu, Vector512.Load(u + i)).Store(g + i);
                }
        }
        else
        {
            for (; i + 15 < n; i += 16)
                for (int j = i; j < i + 16; j++)
                {
                    float x = gate[j];
                    gate[j] = x / (1f + ExpGgml(0f - x)) * up[j];
                }
        }
        for (; i < n; i++)
        {
            float x = gate[i];
            gate[i] = x / (1f + MathF.Exp(-x)) * up[i];
        }
    }

    // ggml-cpu's ggml_v_expf (vec.h, AVX-512): e^x = 2^n * (1 + b*p(b)) with n = round(x*log2 e), b = x - n*ln 2 in two
    // steps; |n| > 192 gives 0 (n <= 0) or +inf. Constants are ggml's.
    // (vec.h writes them as hex floats: 0x1.8p23, 0x1.715476p+0, 0x1.62e4p-1, 0x1.7f7d1cp-20, 0x1.ffffecp-1, 0x1.fffdb6p-2,
    // 0x1.555e66p-3, 0x1.573e2ep-5, 0x1.0e4020p-7; here their bit patterns.)
    private static readonly float ExpShift = 12582912f, Log2E = Bits(0x3FB8AA3B), Ln2Hi = Bits(0x3F317200), Ln2Lo = Bits(0x35BFBE8E);
    private static readonly float P0 = Bits(0x3F7FFFF6), P1 = Bits(0x3EFFFEDB), P2 = Bits(0x3E2AAF33), P3 = Bits(0x3D2B9F17), P4 = Bits(0x3C072010);

    private static float Bits(uint bits) => BitConverter.UInt32BitsToSingle(bits);

    /// <summary>ggml's AVX-512 <c>ggml_v_expf</c>, sixteen lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ExpGgml(Vector512<float> x)
    {
        var r = Vector512.Create(ExpShift);
        var z = Avx512F.FusedMultiplyAdd(x, Vector512.Create(Log2E), r);
        var n = Avx512F.Subtract(z, r);
        var b = Avx512F.FusedMultiplyAddNegated(n, Vector512.Create(Ln2Lo), Avx512F.FusedMultiplyAddNegated(n, Vector512.Create(Ln2Hi), x));
        var u = Avx512F.Multiply(b, b);
        var j = Avx512F.FusedMultiplyAdd(
            Avx512F.FusedMultiplyAdd(Avx512F.FusedMultiplyAdd(Vector512.Create(P4), b, Vector512.Create(P3)), u,
                Avx512F.FusedMultiplyAdd(Vector512.Create(P2), b, Vector512.Create(P1))),
            u,
            Avx512F.FusedMultiplyAdd(Vector512.Create(P0), b, Vector512.Create(1f)));
        var res = Avx512F.Scale(j, n);
        var big = Vector512.GreaterThan(Vector512.Abs(n), Vector512.Create(192f));
        if (!Vector512.GreaterThanAny(Vector512.Abs(n), Vector512.Create(192f))) return res;
        var alt = Vector512.ConditionalSelect(Vector512.LessThanOrEqual(n, Vector512<float>.Zero), Vector512<float>.Zero, Vector512.Create(float.PositiveInfinity));
        return Vector512.ConditionalSelect(big, alt, res);
    }

    /// <summary><see cref="ExpGgml(Vector512{float})"/> for one lane, in scalar code.</summary>
    internal static float ExpGgml(float x)
    {
        float z = MathF.FusedMultiplyAdd(x, Log2E, ExpShift);
        float n = z - ExpShift;
        float b = MathF.FusedMultiplyAdd(-n, Ln2Lo, MathF.FusedMultiplyAdd(-n, Ln2Hi, x));
        float u = b * b;
        float j = MathF.FusedMultiplyAdd(
            MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(P4, b, P3), u, MathF.FusedMultiplyAdd(P2, b, P1)),
            u,
            MathF.FusedMultiplyAdd(P0, b, 1f));
        // Ordered comparison, as _CMP_GT_OQ: a NaN n is not "big".
        if (MathF.Abs(n) > 192f) return n <= 0f ? 0f : float.PositiveInfinity;
        return float.IsNaN(n) ? j * n : MathF.ScaleB(j, (int)n);
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
