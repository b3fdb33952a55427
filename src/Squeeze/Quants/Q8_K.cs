using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Squeeze.Numerics.GgmlRounding;
using static Squeeze.Quants.QuantBlocks;

namespace Squeeze.Quants;

// Q8_K (ggml block_q8_K): super-blocks of 256 values, 292 bytes. The activation format of every k-quant dot
// product; ggml never stores weights in it (ggml_quantize_chunk does not accept it).
//   offset   0  d       4 bytes   f32 scale, max / -127 (the value of largest magnitude maps to -127)
//   offset   4  qs    256 bytes   int8 quants; value j = d * qs[j]
//   offset 260  bsums  32 bytes   16 int16 sums of qs over groups of 16 (for the mins of k-quants)

/// <summary>
/// Kernels of <see cref="GgmlType.Q8_K"/>. <see cref="QuantizeRow"/> is ggml's <c>quantize_row_q8_K_ref</c> (what
/// ggml-cpu's <c>from_float</c> calls on x86), <see cref="DequantizeRow"/> is <c>dequantize_row_q8_K</c>. ggml has no
/// dot product of two Q8_K rows; Squeeze's pairs Q8_K with itself.
/// </summary>
public sealed class Q8_K : IQuantKernel
{
    /// <summary>Elements per super-block (ggml's <c>QK_K</c>).</summary>
    public const int QK = GgmlTypes.QK_K;
    /// <summary>Bytes per super-block.</summary>
    public const int BlockBytes = 292;
    /// <summary>Offset of the quants in a block.</summary>
    public const int QsOffset = 4;
    /// <summary>Offset of the 16 int16 group sums in a block.</summary>
    public const int BsumsOffset = 260;

    /// <summary>The shared instance.</summary>
    public static readonly Q8_K Instance = new();

    /// <inheritdoc/>
    public GgmlType Type => GgmlType.Q8_K;
    /// <inheritdoc/>
    public GgmlType VecDotType => GgmlType.Q8_K;
    /// <inheritdoc/>
    public bool RequiresImportance => false;

    /// <summary>ggml's <c>quantize_row_q8_K_ref</c>; importance weights are ignored.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance) => QuantizeRowRef(src, dst);

    /// <summary>ggml's <c>quantize_row_q8_K_ref</c>: iscale = -127/max, q = min(127, nearest_int(iscale*x)), d = 1/iscale.</summary>
    public static unsafe void QuantizeRowRef(ReadOnlySpan<float> x, Span<byte> y)
    {
        int nb = Blocks(x.Length, QK, BlockBytes, x.Length, y.Length, "q8_K");
        bool vector = BlockStats.Enabled;
        fixed (float* px = x)
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK, QK);
            var yb = y.Slice(i * BlockBytes, BlockBytes);
            float max = 0, amax = 0;
            if (!vector || !BlockStats.TryAbsMax(px + i * QK, QK, out amax, out max))
            {
                max = 0; amax = 0;
                for (int j = 0; j < QK; ++j)
                {
                    float ax = MathF.Abs(xb[j]);
                    if (ax > amax) { amax = ax; max = xb[j]; }
                }
            }
            if (amax == 0)
            {
                // d = 0 and zero quants. ggml leaves bsums as the buffer had them; Squeeze zeroes them (same bytes on a fresh buffer).
                yb.Clear();
                continue;
            }
            float iscale = -127f / max;
            var qs = MemoryMarshal.Cast<byte, sbyte>(yb.Slice(QsOffset, QK));
            if (vector)
            {
                var vis = Vector256.Create(iscale);
                var v127 = Vector256.Create(127);
                float* xq = px + i * QK;
                for (int j = 0; j < QK; j += 32)
                {
                    Vector256<int> Q(int o)
                    {
                        var v = Avx.Multiply(vis, Vector256.Load(xq + j + o)) + Vector256.Create(12582912f);
                        return Avx2.Min(v127, (v.AsInt32() & Vector256.Create(0x007fffff)) - Vector256.Create(0x00400000));
                    }
                    Vector256.Narrow(Vector256.Narrow(Q(0), Q(8)), Vector256.Narrow(Q(16), Q(24))).CopyTo(qs.Slice(j, 32));
                }
            }
            else
            {
                for (int j = 0; j < QK; ++j) qs[j] = (sbyte)Math.Min(127, NearestInt(iscale * xb[j]));
            }
            for (int j = 0; j < QK / 16; ++j)
            {
                int sum = 0;
                for (int ii = 0; ii < 16; ++ii) sum += qs[j * 16 + ii];
                Unsafe.WriteUnaligned(ref yb[BsumsOffset + 2 * j], (short)sum);
            }
            Unsafe.WriteUnaligned(ref yb[0], 1 / iscale);
        }
    }

    /// <summary>ggml's <c>dequantize_row_q8_K</c>.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = BlocksIn(src.Length, BlockBytes, "q8_K");
        if (dst.Length < nb * QK) throw new ArgumentException("q8_K: destination too short");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * BlockBytes, BlockBytes);
            float d = Unsafe.ReadUnaligned<float>(in b[0]);
            var yb = dst.Slice(i * QK, QK);
            for (int j = 0; j < QK; ++j) yb[j] = d * (sbyte)b[QsOffset + j];
        }
    }

    /// <summary>The dot product of two Q8_K rows: per block <c>dx*dy * sum(qx*qy)</c> (ggml has no such kernel).</summary>
    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = DotBlocks(n, QK, BlockBytes, x.Length, BlockBytes, y.Length, "q8_K vec_dot");
        float sumf = 0;
        bool avx2 = QuantSimd.UseAvx2;
        for (int i = 0; i < nb; ++i)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var yb = y.Slice(i * BlockBytes, BlockBytes);
            int sumi;
            if (avx2)
            {
                Vector256<int> acc = Vector256<int>.Zero;
                for (int j = 0; j < QK; j += 32)
                {
                    var qx = Vector256.Create(xb.Slice(QsOffset + j, 32)).AsSByte();
                    var qy = Vector256.Create(yb.Slice(QsOffset + j, 32)).AsSByte();
                    acc = Avx2.Add(acc, QuantSimd.MulSumI8Exact(qx, qy));
                }
                sumi = QuantSimd.HorizontalSum(acc);
            }
            else
            {
                sumi = 0;
                for (int j = 0; j < QK; ++j) sumi += (sbyte)xb[QsOffset + j] * (sbyte)yb[QsOffset + j];
            }
            sumf += Unsafe.ReadUnaligned<float>(in xb[0]) * Unsafe.ReadUnaligned<float>(in yb[0]) * sumi;
        }
        return sumf;
    }
}
