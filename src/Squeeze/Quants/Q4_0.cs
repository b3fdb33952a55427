using Squeeze.Numerics;
using System.Runtime.InteropServices;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q4_0 (ggml block_q4_0): blocks of 32 weights, 18 bytes.
//   offset 0  d    2 bytes   fp16 scale (negative: the value of largest magnitude maps to level 0)
//   offset 2  qs  16 bytes   4-bit quants: byte j holds element j (low nibble) and element j+16 (high nibble)
// weight = d * (q - 8)

/// <summary>Kernels of <see cref="GgmlType.Q4_0"/>: 4-bit symmetric blocks of 32, dot products against Q8_0.</summary>
public sealed partial class Q4_0 : IQuantKernel
{
    /// <summary>Elements per block (ggml's <c>QK4_0</c>).</summary>
    public const int QK = 32;
    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 18;

    /// <summary>The shared instance.</summary>
    public static readonly Q4_0 Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q4_0;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_0;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_q4_0</c> for one row: the reference path without importance, the weighted search with it.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) QuantizeRowRef(src, dst);
        else QuantizeRowImpl(src, dst, importance);
    }

    /// <summary>ggml's <c>quantize_row_q4_0_ref</c>: d = max / -8, q = (int8)(x/d + 8.5) capped at 15.</summary>
    public static unsafe void QuantizeRowRef(ReadOnlySpan<float> x, Span<byte> y)
    {
        int nb = Blocks(x.Length, QK, BlockBytes, x.Length, y.Length, "q4_0");
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
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            SetHalf(yb, 0, d);
            if (vector)
            {
                QuantizeNibblesAvx2(px + i * QK, id, 8.5f, yb.Slice(2, QK / 2));
                continue;
            }
            for (int j = 0; j < QK / 2; ++j)
            {
                float x0 = xb[j] * id;
                float x1 = xb[QK / 2 + j] * id;
                int xi0 = Math.Min(15, (int)(sbyte)GgmlRounding.TruncateToInt(x0 + 8.5f));
                int xi1 = Math.Min(15, (int)(sbyte)GgmlRounding.TruncateToInt(x1 + 8.5f));
                yb[2 + j] = (byte)((byte)xi0 | (byte)(xi1 << 4));
            }
        }
    }

    /// <summary>ggml's <c>quantize_row_q4_0_impl</c> with importance: <c>make_qx_quants</c> per block, weights qw·sqrt(σ² + x²).</summary>
    public static void QuantizeRowImpl(ReadOnlySpan<float> x, Span<byte> y, ReadOnlySpan<float> quantWeights)
    {
        int nPerRow = x.Length;
        int nb = Blocks(nPerRow, QK, BlockBytes, x.Length, y.Length, "q4_0");
        if (quantWeights.Length < nPerRow) throw new ArgumentException("q4_0: importance shorter than the row");
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
            float d = ScaleSearch.MakeQxQuants(QK, 8, xb, L, 1, weight);
            SetHalf(yb, 0, d);
            for (int j = 0; j < 16; ++j) yb[2 + j] = (byte)((byte)L[j] | ((byte)L[j + 16] << 4));
        }
    }

    /// <summary>ggml's <c>dequantize_row_q4_0</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q4_0");
        if (dst.Length < nb * QK) throw new ArgumentException("q4_0: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            var yb = dst.Slice(i * QK, QK);
            float d = Half(b, 0);
            for (int j = 0; j < QK / 2; ++j)
            {
                int x0 = (b[2 + j] & 0x0F) - 8;
                int x1 = (b[2 + j] >> 4) - 8;
                yb[j] = x0 * d;
                yb[j + QK / 2] = x1 * d;
            }
        }
    }

    /// <summary>ggml-cpu's <c>ggml_vec_dot_q4_0_q8_0</c>.</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, Q8_0.BlockBytes, y.Length, "q4_0 vec_dot");
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
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                int v0 = (xb[2 + j] & 0x0F) - 8;
                int v1 = (xb[2 + j] >> 4) - 8;
                sumi0 += v0 * (sbyte)yb[2 + j];
                sumi1 += v1 * (sbyte)yb[2 + j + QK / 2];
            }
            int sumi = sumi0 + sumi1;
            sumf += sumi * Half(xb, 0) * Half(yb, 0);
        }
        return sumf;
    }
}
