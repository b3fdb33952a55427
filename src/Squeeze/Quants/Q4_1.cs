using Squeeze.Numerics;
using System.Runtime.InteropServices;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q4_1 (ggml block_q4_1): blocks of 32 weights, 20 bytes.
//   offset 0  d    2 bytes   fp16 scale
//   offset 2  m    2 bytes   fp16 min (the block's smallest value)
//   offset 4  qs  16 bytes   4-bit quants: byte j holds element j (low nibble) and element j+16 (high nibble)
// weight = d * q + m

/// <summary>Kernels of <see cref="GgmlType.Q4_1"/>: 4-bit blocks of 32 with a min, dot products against Q8_1.</summary>
public sealed partial class Q4_1 : IQuantKernel
{
    /// <summary>Elements per block (ggml's <c>QK4_1</c>).</summary>
    public const int QK = 32;
    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 20;

    /// <summary>The shared instance.</summary>
    public static readonly Q4_1 Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q4_1;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_1;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_q4_1</c> for one row: the reference path without importance, the weighted search with it.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) QuantizeRowRef(src, dst);
        else QuantizeRowImpl(src, dst, importance);
    }

    /// <summary>ggml's <c>quantize_row_q4_1_ref</c>: d = (max - min) / 15, q = (int8)((x - min)/d + 0.5) capped at 15.</summary>
    public static unsafe void QuantizeRowRef(ReadOnlySpan<float> x, Span<byte> y)
    {
        int nb = Blocks(x.Length, QK, BlockBytes, x.Length, y.Length, "q4_1");
        bool vector = BlockStats.Enabled;
        fixed (float* px = x)
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK, QK);
            var yb = y.Slice(i * BlockBytes, BlockBytes);
            float min, max;
            if (!vector || !BlockStats.TryMinMax32(px + i * QK, out min, out max))
            {
                min = float.MaxValue; max = -float.MaxValue;
                for (int j = 0; j < QK; j++)
                {
                    float v = xb[j];
                    if (v < min) min = v;
                    if (v > max) max = v;
                }
            }
            float d = (max - min) / ((1 << 4) - 1);
            float id = d != 0 ? 1.0f / d : 0.0f;
            SetHalf(yb, 0, d);
            SetHalf(yb, 2, min);
            if (vector)
            {
                Q4_0.QuantizeNibblesAvx2(px + i * QK, id, 0.5f, yb.Slice(4, QK / 2), min, subtract: true);
                continue;
            }
            for (int j = 0; j < QK / 2; ++j)
            {
                float x0 = (xb[j] - min) * id;
                float x1 = (xb[QK / 2 + j] - min) * id;
                int xi0 = Math.Min(15, (int)(sbyte)GgmlRounding.TruncateToInt(x0 + 0.5f));
                int xi1 = Math.Min(15, (int)(sbyte)GgmlRounding.TruncateToInt(x1 + 0.5f));
                yb[4 + j] = (byte)((byte)xi0 | (byte)(xi1 << 4));
            }
        }
    }

    /// <summary>ggml's <c>quantize_row_q4_1_impl</c> with importance: <c>make_qkx3_quants</c> per block, weights qw·sqrt(σ² + x²).</summary>
    public static void QuantizeRowImpl(ReadOnlySpan<float> x, Span<byte> y, ReadOnlySpan<float> quantWeights)
    {
        int nPerRow = x.Length;
        int nb = Blocks(nPerRow, QK, BlockBytes, x.Length, y.Length, "q4_1");
        if (quantWeights.Length < nPerRow) throw new ArgumentException("q4_1: importance shorter than the row");
        Span<float> weight = stackalloc float[QK];
        Span<byte> L = stackalloc byte[QK];
        Span<byte> Laux = stackalloc byte[QK];
        float sumX2 = 0;
        for (int j = 0; j < nPerRow; ++j) sumX2 += x[j] * x[j];
        float sigma2 = sumX2 / nPerRow;
        for (int ib = 0; ib < nb; ++ib)
        {
            var xb = x.Slice(QK * ib, QK);
            var qw = quantWeights.Slice(QK * ib, QK);
            var yb = y.Slice(ib * BlockBytes, BlockBytes);
            for (int j = 0; j < QK; ++j) weight[j] = qw[j] * MathF.Sqrt(sigma2 + xb[j] * xb[j]);
            float d = ScaleSearch.MakeQkx3Quants(QK, 15, xb, weight, L, out float min, Laux, -0.9f, 0.05f, 36, false);
            SetHalf(yb, 0, d);
            SetHalf(yb, 2, -min);
            for (int j = 0; j < 16; ++j) yb[4 + j] = (byte)(L[j] | (L[j + 16] << 4));
        }
    }

    /// <summary>ggml's <c>dequantize_row_q4_1</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q4_1");
        if (dst.Length < nb * QK) throw new ArgumentException("q4_1: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            var yb = dst.Slice(i * QK, QK);
            float d = Half(b, 0), m = Half(b, 2);
            for (int j = 0; j < QK / 2; ++j)
            {
                int x0 = b[4 + j] & 0x0F;
                int x1 = b[4 + j] >> 4;
                yb[j] = x0 * d + m;
                yb[j + QK / 2] = x1 * d + m;
            }
        }
    }

    /// <summary>ggml-cpu's <c>ggml_vec_dot_q4_1_q8_1</c>.</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, Q8_1.BlockBytes, y.Length, "q4_1 vec_dot");
        if (QuantSimd.UseAvx2) return VecDotAvx2(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), nb, QuantSimd.UseVnni);
        return VecDotScalar(x, y, nb);
    }

    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var xb = x.Slice(ib * BlockBytes, BlockBytes);
            var yb = y.Slice(ib * Q8_1.BlockBytes, Q8_1.BlockBytes);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                int v0 = xb[4 + j] & 0x0F;
                int v1 = xb[4 + j] >> 4;
                sumi0 += v0 * (sbyte)yb[4 + j];
                sumi1 += v1 * (sbyte)yb[4 + j + QK / 2];
            }
            int sumi = sumi0 + sumi1;
            sumf += (Half(xb, 0) * Half(yb, 0)) * sumi + Half(xb, 2) * Half(yb, 2);
        }
        return sumf;
    }
}
