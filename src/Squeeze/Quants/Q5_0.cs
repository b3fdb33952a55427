using Squeeze.Numerics;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q5_0 (ggml block_q5_0): blocks of 32 weights, 22 bytes.
//   offset 0  d    2 bytes   fp16 scale (negative: the value of largest magnitude maps to level 0)
//   offset 2  qh   4 bytes   fifth bits, little-endian uint32: bit j belongs to element j
//   offset 6  qs  16 bytes   low 4 bits: byte j holds element j (low nibble) and element j+16 (high nibble)
// weight = d * (q - 16)

/// <summary>Kernels of <see cref="GgmlType.Q5_0"/>: 5-bit symmetric blocks of 32, dot products against Q8_0.</summary>
public sealed partial class Q5_0 : IQuantKernel
{
    /// <summary>Elements per block (ggml's <c>QK5_0</c>).</summary>
    public const int QK = 32;
    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 22;

    /// <summary>The shared instance.</summary>
    public static readonly Q5_0 Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q5_0;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_0;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_q5_0</c> for one row: the reference path without importance, the weighted search with it.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) QuantizeRowRef(src, dst);
        else QuantizeRowImpl(src, dst, importance);
    }

    /// <summary>ggml's <c>quantize_row_q5_0_ref</c>: d = max / -16, q = (int8)(x/d + 16.5) capped at 31.</summary>
    public static unsafe void QuantizeRowRef(ReadOnlySpan<float> x, Span<byte> y)
    {
        int nb = Blocks(x.Length, QK, BlockBytes, x.Length, y.Length, "q5_0");
        bool vector = BlockStats.Enabled;
        fixed (float* px = x)
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK, QK);
            var yb = y.Slice(i * BlockBytes, BlockBytes);
            float amax = 0.0f, max = 0.0f;
            if (!vector || !BlockStats.TryAbsMax(px + i * QK, QK, out amax, out max))
            {
                amax = 0.0f; max = 0.0f;
                for (int j = 0; j < QK; j++)
                {
                    float v = xb[j];
                    if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
                }
            }
            float d = max / -16;
            float id = d != 0 ? 1.0f / d : 0.0f;
            SetHalf(yb, 0, d);
            uint qh = 0;
            if (vector)
            {
                QuantizeFiveBitsAvx2(px + i * QK, id, 16.5f, yb.Slice(6, QK / 2), out qh);
            }
            else
            {
                for (int j = 0; j < QK / 2; ++j)
                {
                    float x0 = xb[j] * id;
                    float x1 = xb[QK / 2 + j] * id;
                    byte xi0 = (byte)Math.Min(31, (int)(sbyte)GgmlRounding.TruncateToInt(x0 + 16.5f));
                    byte xi1 = (byte)Math.Min(31, (int)(sbyte)GgmlRounding.TruncateToInt(x1 + 16.5f));
                    yb[6 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                    qh |= ((xi0 & 0x10u) >> 4) << j;
                    qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
                }
            }
            BinaryPrimitives.WriteUInt32LittleEndian(yb[2..], qh);
        }
    }

    /// <summary>ggml's <c>quantize_row_q5_0_impl</c> with importance: <c>make_qx_quants</c> per block, weights qw·sqrt(σ² + x²).</summary>
    public static void QuantizeRowImpl(ReadOnlySpan<float> x, Span<byte> y, ReadOnlySpan<float> quantWeights)
    {
        int nPerRow = x.Length;
        int nb = Blocks(nPerRow, QK, BlockBytes, x.Length, y.Length, "q5_0");
        if (quantWeights.Length < nPerRow) throw new ArgumentException("q5_0: importance shorter than the row");
        Span<float> weight = stackalloc float[QK];
        Span<sbyte> L = stackalloc sbyte[QK];
        float sumX2 = 0;
        for (int j = 0; j < nPerRow; ++j) sumX2 += x[j] * x[j];
        float sigma2 = sumX2 / nPerRow;
        for (int ib = 0; ib < nb; ++ib)
        {
            var xb = x.Slice(QK * ib, QK);
            var qw = quantWeights.Slice(QK * ib, QK);
            var yb = y.Slice(ib * BlockBytes, BlockBytes);
            for (int j = 0; j < QK; ++j) weight[j] = qw[j] * MathF.Sqrt(sigma2 + xb[j] * xb[j]);
            float d = ScaleSearch.MakeQxQuants(QK, 16, xb, L, 1, weight);
            SetHalf(yb, 0, d);
            uint qh = 0;
            for (int j = 0; j < 16; ++j)
            {
                byte xi0 = (byte)L[j], xi1 = (byte)L[j + 16];
                yb[6 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10u) >> 4) << j;
                qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(yb[2..], qh);
        }
    }

    /// <summary>ggml's <c>dequantize_row_q5_0</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q5_0");
        if (dst.Length < nb * QK) throw new ArgumentException("q5_0: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            var yb = dst.Slice(i * QK, QK);
            float d = Half(b, 0);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(b[2..]);
            for (int j = 0; j < QK / 2; ++j)
            {
                int xh0 = (int)(((qh >> j) << 4) & 0x10);
                int xh1 = (int)((qh >> (j + 12)) & 0x10);
                int x0 = ((b[6 + j] & 0x0F) | xh0) - 16;
                int x1 = ((b[6 + j] >> 4) | xh1) - 16;
                yb[j] = x0 * d;
                yb[j + QK / 2] = x1 * d;
            }
        }
    }

    /// <summary>ggml-cpu's <c>ggml_vec_dot_q5_0_q8_0</c>.</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, Q8_0.BlockBytes, y.Length, "q5_0 vec_dot");
        if (QuantSimd.UseAvx2) return VecDotAvx2(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), nb, QuantSimd.UseVnni);
        return VecDotScalar(x, y, nb);
    }

    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var xb = x.Slice(ib * BlockBytes, BlockBytes);
            var yb = y.Slice(ib * Q8_0.BlockBytes, Q8_0.BlockBytes);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(xb[2..]);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                int xh0 = (int)(((qh >> j) << 4) & 0x10);
                int xh1 = (int)((qh >> (j + 12)) & 0x10);
                int x0 = ((xb[6 + j] & 0x0F) | xh0) - 16;
                int x1 = ((xb[6 + j] >> 4) | xh1) - 16;
                sumi0 += x0 * (sbyte)yb[2 + j];
                sumi1 += x1 * (sbyte)yb[2 + j + QK / 2];
            }
            int sumi = sumi0 + sumi1;
            sumf += (Half(xb, 0) * Half(yb, 0)) * sumi;
        }
        return sumf;
    }
}
