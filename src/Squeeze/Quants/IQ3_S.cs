// IQ3_S: 256 weights in 110 bytes (3.4375 bits per weight), ggml's block_iq3_s.
//   d           2 bytes   fp16 super-block scale
//   qs[64]     64 bytes   low 8 bits of the grid index (into Iq3sGrid) of each group of 4 weights
//   qh[8]       8 bytes   bit 8 of those indices: qh[ib] bit k for group k of sub-block ib
//   signs[32]  32 bytes   one sign bit per weight (set = negative)
//   scales[4]   4 bytes   4-bit sub-block scales ls, two per byte (low nibble first)
// weight = d * (1 + 2 * ls) * grid byte * sign.

using System.Buffers.Binary;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>Kernels of <see cref="GgmlType.IQ3_S"/> (dot products against <see cref="GgmlType.Q8_K"/>).</summary>
internal sealed partial class IQ3_S : IQuantKernel
{
    private const int QK_K = 256;
    private const int BlockBytes = 110;
    private const int OffQs = 2, OffQh = 66, OffSigns = 74, OffScales = 106;

    public GgmlType Type => GgmlType.IQ3_S;
    public GgmlType VecDotType => GgmlType.Q8_K;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        IqDot.CheckQuantizeArgs(src, dst, importance, QK_K, BlockBytes);
        int nbl = src.Length / QK_K;
        var t = Iq3Search.Grid512;
        Span<float> scales = stackalloc float[QK_K / 32];
        Span<float> weight = stackalloc float[32];
        Span<int> gridIndex = stackalloc int[8];
        Span<byte> signs = stackalloc byte[4];
        for (int ibl = 0; ibl < nbl; ibl++)
        {
            var y = dst.Slice(ibl * BlockBytes, BlockBytes);
            y.Clear();
            var xbl = src.Slice(QK_K * ibl, QK_K);
            float maxScale = 0;
            float sumx2 = 0;
            for (int i = 0; i < QK_K; i++) sumx2 += xbl[i] * xbl[i];
            float sigma2 = 2 * sumx2 / QK_K;

            // ggml advances its qs and signs pointers only past sub-blocks it quantizes, so a skipped (all-zero)
            // sub-block shifts the later ones down while qh and scales stay indexed by sub-block. Kept for identical bytes.
            int qsPos = OffQs, signsPos = OffSigns;
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                var xb = xbl.Slice(32 * ib, 32);
                if (!importance.IsEmpty)
                {
                    var qw = importance.Slice(QK_K * ibl + 32 * ib, 32);
                    for (int i = 0; i < 32; i++) weight[i] = qw[i] * MathF.Sqrt(sigma2 + xb[i] * xb[i]);
                }
                else
                {
                    for (int i = 0; i < 32; i++) weight[i] = xb[i] * xb[i];
                }
                float scale = Iq3Quantizer.QuantizeSubBlock(t, xxs: false, xb, weight, gridIndex, signs, out bool skipped);
                if (skipped)
                {
                    scales[ib] = 0;
                    continue;
                }
                for (int k = 0; k < 8; k++)
                {
                    y[qsPos + k] = (byte)gridIndex[k];
                    y[OffQh + ib] |= (byte)((gridIndex[k] >> 8) << k);
                }
                qsPos += 8;
                signs.CopyTo(y.Slice(signsPos));
                signsPos += 4;
                scales[ib] = scale;
                maxScale = maxScale > scale ? maxScale : scale;
            }

            if (maxScale == 0) continue;
            float d = maxScale / 31;
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(d * 1.033f));
            float id = 1 / d;
            for (int ib = 0; ib < QK_K / 32; ib += 2)
            {
                int l1 = GgmlRounding.NearestInt(0.5f * (id * scales[ib] - 1));
                l1 = Math.Max(0, Math.Min(15, l1));
                int l2 = GgmlRounding.NearestInt(0.5f * (id * scales[ib + 1] - 1));
                l2 = Math.Max(0, Math.Min(15, l2));
                y[OffScales + ib / 2] = (byte)(l1 | (l2 << 4));
            }
        }
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        IqDot.CheckDequantizeArgs(src, dst, QK_K, BlockBytes);
        int nb = dst.Length / QK_K;
        var grid = Iq3Grids.Iq3sGrid;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x));
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                int sc = x[OffScales + ib32 / 2];
                float db = d * (1 + 2 * ((ib32 & 1) == 0 ? sc & 0xf : sc >> 4));
                int qh = x[OffQh + ib32];
                for (int l = 0; l < 4; l++)
                {
                    int s = x[OffSigns + 4 * ib32 + l];
                    uint g1 = grid[x[OffQs + 8 * ib32 + 2 * l] | ((qh << (8 - 2 * l)) & 256)];
                    uint g2 = grid[x[OffQs + 8 * ib32 + 2 * l + 1] | ((qh << (7 - 2 * l)) & 256)];
                    int o = 32 * ib32 + 8 * l;
                    for (int j = 0; j < 4; j++)
                    {
                        y[o + j] = db * (byte)(g1 >> 8 * j) * ((s & (1 << j)) != 0 ? -1f : 1f);
                        y[o + j + 4] = db * (byte)(g2 >> 8 * j) * ((s & (1 << (j + 4))) != 0 ? -1f : 1f);
                    }
                }
            }
        }
    }

    public float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        if (n % QK_K != 0) throw new ArgumentException($"n = {n} is not a multiple of {QK_K}", nameof(n));
        if (x.Length < n / QK_K * BlockBytes || y.Length < n / QK_K * IqDot.Q8KBytes) throw new ArgumentException("rows are shorter than n");
        if (Simd.Level >= SimdLevel.Avx2 && System.Runtime.Intrinsics.X86.Avx2.IsSupported) return VecDotAvx2(x, y, n);
        return VecDotScalar(x, y, n);
    }

    /// <summary>
    /// The scalar reference, in ggml-cpu's x86 lane order (see <see cref="IQ3_XXS.VecDotScalar"/>), so every level
    /// returns the same bits as ggml.
    /// </summary>
    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        var grid = Iq3Grids.Iq3sGrid;
        Span<float> acc = stackalloc float[8];
        Span<int> lanes = stackalloc int[8];
        acc.Clear();
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var yb = y.Slice(i * IqDot.Q8KBytes, IqDot.Q8KBytes);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb)) * IqDot.Q8KD(yb);
            var q8 = IqDot.Q8KQs(yb);
            lanes.Clear();
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                int sc = xb[OffScales + ib32 / 2];
                int ls = 2 * ((ib32 & 1) == 0 ? sc & 0xf : sc >> 4) + 1;
                int qh = xb[OffQh + ib32];
                for (int m = 0; m < 8; m++)
                {
                    uint g = grid[xb[OffQs + 8 * ib32 + m] | ((qh << (8 - m)) & 256)];
                    int s = xb[OffSigns + 4 * ib32 + m / 2] >> 4 * (m & 1);
                    int sum = 0;
                    for (int j = 0; j < 4; j++)
                    {
                        int q = q8[32 * ib32 + 4 * m + j];
                        // ggml negates with (q ^ -1) - -1, which wraps -(-128) to -128; kept so all levels agree.
                        if ((s & (1 << j)) != 0) q = (sbyte)-q;
                        sum += (byte)(g >> 8 * j) * q;
                    }
                    lanes[m] += sum * ls;
                }
            }
            for (int j = 0; j < 8; j++) acc[j] = MathF.FusedMultiplyAdd(d, lanes[j], acc[j]);
        }
        return IqDot.HorizontalSum8(acc);
    }
}
