using Squeeze.Numerics;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q5_1 (ggml block_q5_1): blocks of 32 weights, 24 bytes.
//   offset 0  d    2 bytes   fp16 scale
//   offset 2  m    2 bytes   fp16 min (the block's smallest value)
//   offset 4  qh   4 bytes   fifth bits, little-endian uint32: bit j belongs to element j
//   offset 8  qs  16 bytes   low 4 bits: byte j holds element j (low nibble) and element j+16 (high nibble)
// weight = d * q + m

/// <summary>Kernels of <see cref="GgmlType.Q5_1"/>: 5-bit blocks of 32 with a min, dot products against Q8_1.</summary>
public sealed partial class Q5_1 : IQuantKernel
{
    /// <summary>Elements per block (ggml's <c>QK5_1</c>).</summary>
    public const int QK = 32;
    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 24;

    /// <summary>The shared instance.</summary>
    public static readonly Q5_1 Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q5_1;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_1;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_q5_1</c> for one row: the reference path without importance, the weighted search with it.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) QuantizeRowRef(src, dst);
        else QuantizeRowImpl(src, dst, importance);
    }

    /// <summary>ggml's <c>quantize_row_q5_1_ref</c>: d = (max - min) / 31, q = (uint8)((x - min)/d + 0.5).</summary>
    public static unsafe void QuantizeRowRef(ReadOnlySpan<float> x, Span<byte> y)
    {
        int nb = Blocks(x.Length, QK, BlockBytes, x.Length, y.Length, "q5_1");
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
            float d = (max - min) / ((1 << 5) - 1);
            float id = d != 0 ? 1.0f / d : 0.0f;
            SetHalf(yb, 0, d);
            SetHalf(yb, 2, min);
            uint qh = 0;
            if (vector)
            {
                Q5_0.QuantizeFiveBitsAvx2(px + i * QK, id, 0.5f, yb.Slice(8, QK / 2), out qh, min, subtract: true, cap: false);
            }
            else
            {
                for (int j = 0; j < QK / 2; ++j)
                {
                    float x0 = (xb[j] - min) * id;
                    float x1 = (xb[QK / 2 + j] - min) * id;
                    byte xi0 = (byte)GgmlRounding.TruncateToInt(x0 + 0.5f);
                    byte xi1 = (byte)GgmlRounding.TruncateToInt(x1 + 0.5f);
                    yb[8 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                    qh |= ((xi0 & 0x10u) >> 4) << j;
                    qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
                }
            }
            BinaryPrimitives.WriteUInt32LittleEndian(yb[4..], qh);
        }
    }

    /// <summary>ggml's <c>quantize_row_q5_1_impl</c> with importance: <c>make_qkx3_quants</c> per block, weights qw·sqrt(σ² + x²).</summary>
    public static void QuantizeRowImpl(ReadOnlySpan<float> x, Span<byte> y, ReadOnlySpan<float> quantWeights)
    {
        int nPerRow = x.Length;
        int nb = Blocks(nPerRow, QK, BlockBytes, x.Length, y.Length, "q5_1");
        if (quantWeights.Length < nPerRow) throw new ArgumentException("q5_1: importance shorter than the row");
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
            float d = ScaleSearch.MakeQkx3Quants(QK, 31, xb, weight, L, out float min, Laux, -0.9f, 0.05f, 36, false);
            SetHalf(yb, 0, d);
            SetHalf(yb, 2, -min);
            uint qh = 0;
            for (int j = 0; j < 16; ++j)
            {
                byte xi0 = L[j], xi1 = L[j + 16];
                yb[8 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10u) >> 4) << j;
                qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(yb[4..], qh);
        }
    }

    /// <summary>ggml's <c>dequantize_row_q5_1</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q5_1");
        if (dst.Length < nb * QK) throw new ArgumentException("q5_1: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            var yb = dst.Slice(i * QK, QK);
            float d = Half(b, 0), m = Half(b, 2);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(b[4..]);
            for (int j = 0; j < QK / 2; ++j)
            {
                int xh0 = (int)(((qh >> j) << 4) & 0x10);
                int xh1 = (int)((qh >> (j + 12)) & 0x10);
                int x0 = (b[8 + j] & 0x0F) | xh0;
                int x1 = (b[8 + j] >> 4) | xh1;
                yb[j] = x0 * d + m;
                yb[j + QK / 2] = x1 * d + m;
            }
        }
    }

    /// <summary>ggml-cpu's <c>ggml_vec_dot_q5_1_q8_1</c>.</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, Q8_1.BlockBytes, y.Length, "q5_1 vec_dot");
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
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(xb[4..]);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                int xh0 = (int)(((qh >> j) << 4) & 0x10);
                int xh1 = (int)((qh >> (j + 12)) & 0x10);
                int x0 = (xb[8 + j] & 0x0F) | xh0;
                int x1 = (xb[8 + j] >> 4) | xh1;
                sumi0 += x0 * (sbyte)yb[4 + j];
                sumi1 += x1 * (sbyte)yb[4 + j + QK / 2];
            }
            int sumi = sumi0 + sumi1;
            sumf += (Half(xb, 0) * Half(yb, 0)) * sumi + Half(xb, 2) * Half(yb, 2);
        }
        return sumf;
    }
}
