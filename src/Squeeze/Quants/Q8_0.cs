using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Squeeze.Numerics;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q8_0 (ggml block_q8_0): blocks of 32 weights, 34 bytes.
//   offset 0  d    2 bytes   fp16 scale, amax / 127
//   offset 2  qs  32 bytes   int8 quants; weight j = d * qs[j]
// Also the activation format ggml pairs with Q4_0, Q5_0 and Q8_0 for dot products.

/// <summary>Kernels of <see cref="GgmlType.Q8_0"/>: 8-bit symmetric blocks of 32.</summary>
public sealed partial class Q8_0 : IQuantKernel
{
    /// <summary>Elements per block (ggml's <c>QK8_0</c>).</summary>
    public const int QK = 32;
    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 34;

    /// <summary>The shared instance.</summary>
    public static readonly Q8_0 Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q8_0;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_0;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_q8_0</c>: the reference quantizer; importance weights are ignored, as in ggml.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance) => QuantizeRowRef(src, dst);

    /// <summary>ggml's <c>quantize_row_q8_0_ref</c>: d = amax/127, q = roundf(x/d).</summary>
    public static unsafe void QuantizeRowRef(ReadOnlySpan<float> x, Span<byte> y)
    {
        int nb = Blocks(x.Length, QK, BlockBytes, x.Length, y.Length, "q8_0");
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
            if (vector)
            {
                RoundBytesAvx2(px + i * QK, id, yb.Slice(2, QK));
                continue;
            }
            for (int j = 0; j < QK; ++j)
                yb[2 + j] = (byte)(sbyte)GgmlRounding.TruncateToInt(GgmlRounding.RoundAwayFromZero(xb[j] * id));
        }
    }

    /// <summary>ggml's <c>dequantize_row_q8_0</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q8_0");
        if (dst.Length < nb * QK) throw new ArgumentException("q8_0: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            float d = Half(b, 0);
            var yb = dst.Slice(i * QK, QK);
            for (int j = 0; j < QK; ++j) yb[j] = (sbyte)b[2 + j] * d;
        }
    }

    /// <summary>ggml-cpu's <c>ggml_vec_dot_q8_0_q8_0</c>.</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, BlockBytes, y.Length, "q8_0 vec_dot");
        if (QuantSimd.UseAvx2) return VecDotAvx2(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), nb, QuantSimd.UseVnni);
        return VecDotScalar(x, y, nb);
    }

    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int nb)
    {
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var xb = x.Slice(ib * BlockBytes, BlockBytes);
            var yb = y.Slice(ib * BlockBytes, BlockBytes);
            int sumi = 0;
            for (int j = 0; j < QK; j++) sumi += (sbyte)xb[2 + j] * (sbyte)yb[2 + j];
            sumf += sumi * (Half(xb, 0) * Half(yb, 0));
        }
        return sumf;
    }
}
