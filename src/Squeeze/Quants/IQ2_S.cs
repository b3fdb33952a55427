// IQ2_S: 256 weights in 82 bytes (2.5625 bits per weight), ggml's block_iq2_s.
//   d           2 bytes   fp16 super-block scale
//   qs[32]     32 bytes   low 8 bits of the grid index (into Iq2Grids.IQ2S) of each group of 8 weights
//   signs[32]  32 bytes   (the second half of ggml's qs[64]) 8 explicit sign bits per group of 8 weights
//   qh[8]       8 bytes   per 32-weight sub-block the high 2 bits of its 4 grid indices (bits 2l..2l+1 for group l)
//   scales[8]   8 bytes   per 32-weight sub-block two 4-bit scales ls: low nibble for weights 0..15, high for 16..31
// weight = d * (0.5 + ls) * 0.25 * grid byte * sign.

using System.Buffers.Binary;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>Kernels of <see cref="GgmlType.IQ2_S"/> (dot products against <see cref="GgmlType.Q8_K"/>).</summary>
internal sealed partial class IQ2_S : IQuantKernel
{
    private const int QK_K = Iq2Quantizer.QK_K;
    private const int BlockBytes = 82;

    public GgmlType Type => GgmlType.IQ2_S;
    public GgmlType VecDotType => GgmlType.Q8_K;

    /// <summary>
    /// False, as in ggml (<c>ggml_quantize_requires_imatrix</c> does not list IQ2_S): without importance weights the
    /// quantizer weighs each value by <c>sigma2/4 + x^2</c>.
    /// </summary>
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance) =>
        Iq2SixteenQuantizer.Quantize(src, dst, importance, Iq2SixteenQuantizer.Variant.IQ2_S);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static int GridIndex(ReadOnlySpan<byte> x, int ib32, int l) => x[2 + 4 * ib32 + l] | ((x[66 + ib32] << (8 - 2 * l)) & 0x300);

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = dst.Length / QK_K;
        var grid = Iq2Grids.IQ2S;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x));
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                byte sc = x[74 + ib32];
                float db0 = d * (0.5f + (sc & 0xf)) * 0.25f;
                float db1 = d * (0.5f + (sc >> 4)) * 0.25f;
                var y = dst.Slice(i * QK_K + 32 * ib32, 32);
                for (int l = 0; l < 4; l++)
                {
                    float dl = l < 2 ? db0 : db1;
                    ulong g = grid[GridIndex(x, ib32, l)];
                    byte signs = x[34 + 4 * ib32 + l];
                    for (int j = 0; j < 8; j++)
                        y[8 * l + j] = dl * (byte)(g >> (8 * j)) * ((signs & Iq2Grids.KMask[j]) != 0 ? -1f : 1f);
                }
            }
        }
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        if (x.Length < n / QK_K * BlockBytes || y.Length < n / QK_K * Iq2Dot.Q8KBytes) throw new ArgumentException("rows shorter than n");
        if (Simd.Level >= SimdLevel.Avx2) return VecDotAvx2(x, y, n);
        return VecDotScalar(x, y, n);
    }

    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        var grid = Iq2Grids.IQ2S;
        Span<float> acc = stackalloc float[8];
        Span<int> lanes = stackalloc int[8];
        acc.Clear();
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb)) * Iq2Dot.Q8D(y, i);
            var q8 = Iq2Dot.Q8Qs(y, i);
            lanes.Clear();
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                byte sc = xb[74 + ib32];
                for (int l = 0; l < 4; l++)
                {
                    int ls = l < 2 ? 2 * (sc & 0xf) + 1 : 2 * (sc >> 4) + 1;
                    ulong g = grid[GridIndex(xb, ib32, l)];
                    byte signs = xb[34 + 4 * ib32 + l];
                    int s0 = 0, s1 = 0;
                    for (int j = 0; j < 8; j++)
                    {
                        int v = (byte)(g >> (8 * j)) * q8[32 * ib32 + 8 * l + j];
                        if ((signs & (1 << j)) != 0) v = -v;
                        if (j < 4) s0 += v; else s1 += v;
                    }
                    lanes[2 * l] += s0 * ls;
                    lanes[2 * l + 1] += s1 * ls;
                }
            }
            Iq2Dot.Accumulate(acc, d, lanes);
        }
        return 0.125f * Iq2Dot.HorizontalSum(acc);
    }
}
