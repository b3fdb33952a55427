using System.Runtime.InteropServices;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// BF16 layout: the upper 16 bits of an IEEE single (ggml_bf16_t) per element (2 bytes), no blocks.
// ggml_quantize_chunk converts with ggml_fp32_to_bf16_row_ref: round to nearest even, subnormals kept (the
// AVX512-BF16 row converter that flushes them is not used for quantizing). The dot product pairs BF16 with BF16.

/// <summary>
/// Kernels of <see cref="GgmlType.BF16"/>. The dot product reproduces ggml-cpu's AVX-512F <c>ggml_vec_dot_bf16</c>
/// as GCC compiled it: two 16-lane accumulators over steps of 32 (its multiply-then-add contracted to fused
/// multiply-add), each reduced to float and added into a double, then a tail of float products added one by one.
/// </summary>
public sealed partial class BF16Kernel : IQuantKernel
{
    private const int Step = 32;

    public GgmlType Type => GgmlType.BF16;
    public GgmlType VecDotType => GgmlType.BF16;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        var h = MemoryMarshal.Cast<byte, ushort>(dst)[..src.Length];
        int i = Simd.Level >= SimdLevel.Avx2 ? Quantize256(src, h) : 0;
        for (; i < src.Length; i++) h[i] = Bf16.FromFloat(src[i]);
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var h = MemoryMarshal.Cast<byte, ushort>(src);
        int i = Simd.Level >= SimdLevel.Avx2 ? Dequantize256(h, dst) : 0;
        for (; i < h.Length; i++) dst[i] = Bf16.ToFloat(h[i]);
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        var xh = MemoryMarshal.Cast<byte, ushort>(x)[..n];
        var yh = MemoryMarshal.Cast<byte, ushort>(y)[..n];
        int np = n & ~(Step - 1);
        var (c1, c2) = Simd.Level switch
        {
            SimdLevel.Avx512 when np > 0 => Body512(xh, yh, np),
            SimdLevel.Avx2 when np > 0 => Body256(xh, yh, np),
            _ => BodyScalar(xh, yh, np),
        };
        double sum = (double)c1;
        sum += c2;
        for (int i = np; i < n; i++) sum += Bf16.ToFloat(xh[i]) * Bf16.ToFloat(yh[i]);
        return (float)sum;
    }

    private static (float, float) BodyScalar(ReadOnlySpan<ushort> x, ReadOnlySpan<ushort> y, int np)
    {
        Span<float> acc = stackalloc float[Step];
        acc.Clear();
        for (int i = 0; i < np; i += Step)
            for (int k = 0; k < Step; k++)
                acc[k] = MathF.FusedMultiplyAdd(Bf16.ToFloat(x[i + k]), Bf16.ToFloat(y[i + k]), acc[k]);
        return (Lanes.Reduce16(acc[..16]), Lanes.Reduce16(acc[16..]));
    }
}
