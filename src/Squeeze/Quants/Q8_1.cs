using System.Runtime.Intrinsics;
using Squeeze.Numerics;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q8_1 (ggml block_q8_1): blocks of 32 values, 36 bytes. An activation format: ggml pairs it with Q4_1 and
// Q5_1 for dot products and never stores weights in it (ggml_quantize_chunk does not accept it).
//   offset 0  d    2 bytes   fp16 scale, amax / 127
//   offset 2  s    2 bytes   fp16 d * sum(qs), so a min can be applied without touching the quants
//   offset 4  qs  32 bytes   int8 quants; value j = d * qs[j]

/// <summary>
/// Kernels of <see cref="GgmlType.Q8_1"/>. <see cref="QuantizeRow"/> is ggml's <c>from_float_ref</c>
/// (<c>quantize_row_q8_1_ref</c>). ggml has neither a <c>to_float</c> nor a <c>vec_dot</c> for this type; Squeeze's
/// dequantization is <c>d * qs</c> and its dot product pairs two Q8_1 rows.
/// </summary>
public sealed partial class Q8_1 : IQuantKernel
{
    /// <summary>Elements per block (ggml's <c>QK8_1</c>).</summary>
    public const int QK = 32;
    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 36;

    /// <summary>The shared instance.</summary>
    public static readonly Q8_1 Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q8_1;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_1;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_row_q8_1_ref</c>; importance weights are ignored.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance) => QuantizeRowRef(src, dst);

    /// <summary>ggml's <c>quantize_row_q8_1_ref</c>: d = amax/127, q = roundf(x/d), s = fp16(d * sum(q)).</summary>
    public static unsafe void QuantizeRowRef(ReadOnlySpan<float> x, Span<byte> y)
    {
        int nb = Blocks(x.Length, QK, BlockBytes, x.Length, y.Length, "q8_1");
        bool vector = BlockStats.Enabled;
        fixed (float* px = x)
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK, QK);
            var yb = y.Slice(i * BlockBytes, BlockBytes);
            float amax = 0.0f;
            if (!vector || !BlockStats.TryAbsMax32(px + i * QK, out amax))
            {
                amax = 0.0f;
                for (int j = 0; j < QK; j++)
                {
                    float av = MathF.Abs(xb[j]);
                    amax = amax > av ? amax : av;
                }
            }
            float d = amax / ((1 << 7) - 1);
            float id = d != 0 ? 1.0f / d : 0.0f;
            SetHalf(yb, 0, d);
            int sum = 0;
            if (vector)
            {
                sum = Q8_0.RoundBytesAvx2(px + i * QK, id, yb.Slice(4, QK));
            }
            else
            {
                for (int j = 0; j < QK / 2; ++j)
                {
                    sbyte q0 = (sbyte)GgmlRounding.TruncateToInt(GgmlRounding.RoundAwayFromZero(xb[j] * id));
                    sbyte q1 = (sbyte)GgmlRounding.TruncateToInt(GgmlRounding.RoundAwayFromZero(xb[QK / 2 + j] * id));
                    yb[4 + j] = (byte)q0;
                    yb[4 + QK / 2 + j] = (byte)q1;
                    sum += q0;
                    sum += q1;
                }
            }
            SetHalf(yb, 2, sum * d);
        }
    }

    /// <summary>d * qs[j] per value (ggml has no <c>to_float</c> for Q8_1; this is what its dot products assume).</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q8_1");
        if (dst.Length < nb * QK) throw new ArgumentException("q8_1: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            float d = Half(b, 0);
            var yb = dst.Slice(i * QK, QK);
            for (int j = 0; j < QK; ++j) yb[j] = (sbyte)b[4 + j] * d;
        }
    }

    /// <summary>The dot product of two Q8_1 rows: per block <c>sum(qx*qy) * (dx*dy)</c> (ggml has no such kernel).</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, BlockBytes, y.Length, "q8_1 vec_dot");
        bool avx2 = QuantSimd.UseAvx2;
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var xb = x.Slice(ib * BlockBytes, BlockBytes);
            var yb = y.Slice(ib * BlockBytes, BlockBytes);
            int sumi;
            if (avx2)
            {
                var qx = Vector256.Create(xb.Slice(4, QK)).AsSByte();
                var qy = Vector256.Create(yb.Slice(4, QK)).AsSByte();
                sumi = QuantSimd.HorizontalSum(QuantSimd.MulSumI8Exact(qx, qy));
            }
            else
            {
                sumi = 0;
                for (int j = 0; j < QK; j++) sumi += (sbyte)xb[4 + j] * (sbyte)yb[4 + j];
            }
            sumf += sumi * (Half(xb, 0) * Half(yb, 0));
        }
        return sumf;
    }
}
