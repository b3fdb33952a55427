using System.Runtime.InteropServices;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// F32 layout: one little-endian IEEE single per element (4 bytes), no blocks.
// "Quantizing" copies (ggml_quantize_chunk memcpy's F32 rows); the dot product pairs F32 with F32.

/// <summary>
/// Kernels of <see cref="GgmlType.F32"/>. The dot product reproduces ggml-cpu's AVX-512 <c>ggml_vec_dot_f32</c>:
/// four 16-lane fused multiply-add accumulators over steps of 64, reduced pairwise, then a float tail in which
/// groups of 16 and 8 are multiplied then added, and the last &lt; 8 elements are fused (as GCC compiled it).
/// </summary>
public sealed partial class F32Kernel : IQuantKernel
{
    private const int Step = 64;

    public GgmlType Type => GgmlType.F32;
    public GgmlType VecDotType => GgmlType.F32;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance) =>
        MemoryMarshal.AsBytes(src).CopyTo(dst);

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst) =>
        src.CopyTo(MemoryMarshal.AsBytes(dst));

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        var xf = MemoryMarshal.Cast<byte, float>(x)[..n];
        var yf = MemoryMarshal.Cast<byte, float>(y)[..n];
        int np = n & ~(Step - 1);
        float sum = Simd.Level switch
        {
            SimdLevel.Avx512 when np > 0 => Body512(xf, yf, np),
            SimdLevel.Avx2 when np > 0 => Body256(xf, yf, np),
            _ => BodyScalar(xf, yf, np),
        };
        return Tail(xf, yf, np, sum);
    }

    private static float BodyScalar(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int np)
    {
        // acc[16 * j + l]: accumulator j (of 4), lane l (of 16).
        Span<float> acc = stackalloc float[Step];
        acc.Clear();
        for (int i = 0; i < np; i += Step)
            for (int k = 0; k < Step; k++)
                acc[k] = MathF.FusedMultiplyAdd(x[i + k], y[i + k], acc[k]);
        return ReduceAccumulators(acc);
    }

    /// <summary>ggml's GGML_F32_VEC_REDUCE of four 16-lane accumulators: (0 + 2) + (1 + 3), then across lanes.</summary>
    internal static float ReduceAccumulators(Span<float> acc)
    {
        for (int l = 0; l < 16; l++)
        {
            acc[l] += acc[32 + l];
            acc[16 + l] += acc[48 + l];
        }
        for (int l = 0; l < 16; l++) acc[l] += acc[16 + l];
        return Lanes.Reduce16(acc[..16]);
    }

    private static float Tail(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int i, float sum)
    {
        int n = x.Length;
        for (; n - i >= 16; i += 16)
            for (int k = 0; k < 16; k++) sum += x[i + k] * y[i + k];
        if (n - i >= 8)
        {
            for (int k = 0; k < 8; k++) sum += x[i + k] * y[i + k];
            i += 8;
        }
        for (; i < n; i++) sum = MathF.FusedMultiplyAdd(x[i], y[i], sum);
        return sum;
    }
}
