using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Squeeze.Numerics;

namespace Squeeze.Quants;

// F16 layout: one little-endian IEEE half (ggml_fp16_t) per element (2 bytes), no blocks.
// Quantizing rounds to nearest even (ggml_fp32_to_fp16_row); the dot product pairs F16 with F16.

/// <summary>
/// Kernels of <see cref="GgmlType.F16"/>. The dot product reproduces ggml-cpu's AVX-512 <c>ggml_vec_dot_f16</c>:
/// the halves are widened to float, multiplied into four 16-lane fused accumulators over steps of 64, reduced as
/// for F32 into a double, and the tail (n mod 64 elements) adds float products to that double one by one.
/// </summary>
public sealed partial class F16Kernel : IQuantKernel
{
    private const int Step = 64;

    /// <summary>2^-112, which rebiases a half's exponent field shifted into a float's.</summary>
    private static readonly float ExpScale = BitConverter.UInt32BitsToSingle(0x07800000u);

    public GgmlType Type => GgmlType.F16;
    public GgmlType VecDotType => GgmlType.F16;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        var h = MemoryMarshal.Cast<byte, ushort>(dst)[..src.Length];
        int i = Simd.Level >= SimdLevel.Avx2 ? Quantize256(src, h) : 0;
        for (; i < src.Length; i++) h[i] = Fp16.FromFloat(src[i]);
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var h = MemoryMarshal.Cast<byte, ushort>(src);
        int i = Simd.Level >= SimdLevel.Avx2 ? Dequantize256(h, dst) : 0;
        for (; i < h.Length; i++) dst[i] = ToFloat(h[i]);
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        var xh = MemoryMarshal.Cast<byte, ushort>(x)[..n];
        var yh = MemoryMarshal.Cast<byte, ushort>(y)[..n];
        int np = n & ~(Step - 1);
        float body = Simd.Level switch
        {
            SimdLevel.Avx512 when np > 0 => Body512(xh, yh, np),
            SimdLevel.Avx2 when np > 0 => Body256(xh, yh, np),
            SimdLevel.Vector128 when np > 0 => Body128(xh, yh, np),
            _ => BodyScalar(xh, yh, np),
        };
        double sum = body;
        for (int i = np; i < n; i++) sum += ToFloat(xh[i]) * ToFloat(yh[i]);
        return (float)sum;
    }

    private static float BodyScalar(ReadOnlySpan<ushort> x, ReadOnlySpan<ushort> y, int np)
    {
        Span<float> acc = stackalloc float[Step];
        acc.Clear();
        for (int i = 0; i < np; i += Step)
            for (int k = 0; k < Step; k++)
                acc[k] = MathF.FusedMultiplyAdd(ToFloat(x[i + k]), ToFloat(y[i + k]), acc[k]);
        return F32Kernel.ReduceAccumulators(acc);
    }

    /// <summary>
    /// Every half's float (256 KiB, like ggml-cpu's <c>ggml_table_f32_f16</c>): block scales are converted by lookup.
    /// </summary>
    private static readonly float[] HalfTable = BuildHalfTable();

    private static float[] BuildHalfTable()
    {
        var t = new float[65536];
        for (int h = 0; h < t.Length; h++) t[h] = Compute((ushort)h);
        return t;
    }

    /// <summary>
    /// Half to float by ggml's bit recipe (<c>ggml_compute_fp16_to_fp32</c>), looked up in a table of its results:
    /// exact for every finite half, and a NaN keeps its payload and comes out quiet, as the float multiply in that
    /// recipe makes it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float ToFloat(ushort h) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(HalfTable), h);

    /// <summary>
    /// Half to float by ggml's bit recipe (<c>ggml_compute_fp16_to_fp32</c>): exact for every finite half, and a
    /// NaN keeps its payload and comes out quiet, as the float multiply in that recipe makes it.
    /// </summary>
    private static float Compute(ushort h)
    {
        uint w = (uint)h << 16;
        uint sign = w & 0x80000000u;
        uint twoW = w + w;
        float normalized = BitConverter.UInt32BitsToSingle((twoW >> 4) + 0x70000000u) * ExpScale;
        float denormalized = BitConverter.UInt32BitsToSingle((twoW >> 17) | 0x3F000000u) - 0.5f;
        uint bits = twoW < 0x08000000u ? BitConverter.SingleToUInt32Bits(denormalized) : BitConverter.SingleToUInt32Bits(normalized);
        return BitConverter.UInt32BitsToSingle(sign | bits);
    }
}
