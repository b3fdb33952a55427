using System.Numerics.Tensors;
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
    /// SwiGLU in place: <c>gate = silu(gate) * up</c>, silu(x) = x / (1 + e^-x), as ggml-cpu's <c>ggml_vec_swiglu_f32</c>
    /// computes it on this CPU: e^-x by ggml's polynomial <c>ggml_v_expf</c> (the AVX-512 version where the CPU has
    /// AVX-512 F and DQ, the AVX2 one with AVX2 and FMA), 16 or 8 values at a time, and the C library's <c>expf</c> for the
    /// rest. The polynomial differs from <c>expf</c> in the last bit for about a quarter of inputs, and such a bit can
    /// move a Q8_K activation scale.
    /// </summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        if (up.Length < gate.Length) throw new ArgumentException("up is shorter than gate", nameof(up));
        int i = 0;
        if (Avx512F.IsSupported && Avx512DQ.IsSupported)
            for (; i + 16 <= gate.Length; i += 16)
            {
                var x = Vector512.Create<float>(gate.Slice(i, 16));
                (x / (Vector512<float>.One + ExpAvx512(-x)) * Vector512.Create<float>(up.Slice(i, 16))).CopyTo(gate.Slice(i, 16));
            }
        else if (Avx2.IsSupported && Fma.IsSupported)
            for (; i + 8 <= gate.Length; i += 8)
            {
                var x = Vector256.Create<float>(gate.Slice(i, 8));
                (x / (Vector256<float>.One + ExpAvx2(-x)) * Vector256.Create<float>(up.Slice(i, 8))).CopyTo(gate.Slice(i, 8));
            }
        for (; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

    // ggml_v_expf's constants (hex floats in ggml-cpu/vec.h).
    private static readonly float C3C072010 = BitConverter.UInt32BitsToSingle(0x3C072010); // 0x1.0e4020p-7
    private static readonly float C3E2AAF33 = BitConverter.UInt32BitsToSingle(0x3E2AAF33); // 0x1.555e66p-3
    private static readonly float C3D2B9F17 = BitConverter.UInt32BitsToSingle(0x3D2B9F17); // 0x1.573e2ep-5
    private static readonly float C3F317200 = BitConverter.UInt32BitsToSingle(0x3F317200); // 0x1.62e4p-1
    private static readonly float C3FB8AA3B = BitConverter.UInt32BitsToSingle(0x3FB8AA3B); // 0x1.715476p+0
    private static readonly float C35BFBE8E = BitConverter.UInt32BitsToSingle(0x35BFBE8E); // 0x1.7f7d1cp-20
    private static readonly float C4B400000 = BitConverter.UInt32BitsToSingle(0x4B400000); // 0x1.8p23
    private static readonly float C3EFFFEDB = BitConverter.UInt32BitsToSingle(0x3EFFFEDB); // 0x1.fffdb6p-2
    private static readonly float C3F7FFFF6 = BitConverter.UInt32BitsToSingle(0x3F7FFFF6); // 0x1.ffffecp-1

    // ggml's ggml_v_expf for AVX-512 (ggml-cpu/vec.h): 2^n * p(b) with n = round(x / ln 2), b = x - n ln 2 in two
    // parts, p a degree-5 polynomial, scaled with vscalefps; |n| > 192 gives +Inf or 0.
    internal static Vector512<float> ExpAvx512(Vector512<float> x)
    {
        var r = Vector512.Create(C4B400000);
        var z = Avx512F.FusedMultiplyAdd(x, Vector512.Create(C3FB8AA3B), r);
        var n = z - r;
        var b = Avx512F.FusedMultiplyAddNegated(n, Vector512.Create(C35BFBE8E),
            Avx512F.FusedMultiplyAddNegated(n, Vector512.Create(C3F317200), x));
        var d = Vector512.GreaterThan(Vector512.Abs(n), Vector512.Create(192f));
        var u = b * b;
        var j = Avx512F.FusedMultiplyAdd(
            Avx512F.FusedMultiplyAdd(Avx512F.FusedMultiplyAdd(Vector512.Create(C3C072010), b, Vector512.Create(C3D2B9F17)), u,
                Avx512F.FusedMultiplyAdd(Vector512.Create(C3E2AAF33), b, Vector512.Create(C3EFFFEDB))),
            u, Avx512F.FusedMultiplyAdd(Vector512.Create(C3F7FFFF6), b, Vector512<float>.One));
        var res = Avx512F.Scale(j, n);
        if (d == Vector512<float>.Zero) return res;
        var alt = Vector512.ConditionalSelect(Vector512.LessThanOrEqual(n, Vector512<float>.Zero), Vector512<float>.Zero, Vector512.Create(float.PositiveInfinity));
        return Vector512.ConditionalSelect(d, alt, res);
    }

    // ggml's ggml_v_expf for AVX2 + FMA (ggml-cpu/vec.h, after ARM's optimized routine): the same reduction, the
    // scale 2^n built in the exponent bits, with the two-step scaling for 126 < |n| <= 192 and +Inf or 0 beyond.
    internal static Vector256<float> ExpAvx2(Vector256<float> x)
    {
        var r = Vector256.Create(C4B400000);
        var z = Fma.MultiplyAdd(x, Vector256.Create(C3FB8AA3B), r);
        var n = z - r;
        var b = Fma.MultiplyAddNegated(n, Vector256.Create(C35BFBE8E), Fma.MultiplyAddNegated(n, Vector256.Create(C3F317200), x));
        var e = z.AsInt32() << 23;
        var k = (e + Vector256<float>.One.AsInt32()).AsSingle();
        var absN = Vector256.Abs(n);
        var c = Vector256.GreaterThan(absN, Vector256.Create(126f));
        var u = b * b;
        var j = Fma.MultiplyAdd(Fma.MultiplyAdd(Fma.MultiplyAdd(Vector256.Create(C3C072010), b, Vector256.Create(C3D2B9F17)), u,
                Fma.MultiplyAdd(Vector256.Create(C3E2AAF33), b, Vector256.Create(C3EFFFEDB))),
            u, Vector256.Create(C3F7FFFF6) * b);
        if (c == Vector256<float>.Zero) return Fma.MultiplyAdd(j, k, k);
        var g = Vector256.LessThanOrEqual(n, Vector256<float>.Zero).AsInt32() & Vector256.Create(unchecked((int)0x82000000u));
        var s1 = (g + Vector256.Create(0x7f000000)).AsSingle();
        var s2 = (e - g).AsSingle();
        var d = Vector256.GreaterThan(absN, Vector256.Create(192f));
        return Vector256.ConditionalSelect(d, s1 * s1,
            Vector256.ConditionalSelect(c, Fma.MultiplyAdd(s2, j, s2) * s1, Fma.MultiplyAdd(k, j, k)));
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
