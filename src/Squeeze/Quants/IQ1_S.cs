// IQ1_S: 256 weights in 50 bytes (1.5625 bits per weight), ggml's block_iq1_s.
//   d           2 bytes   fp16 super-block scale
//   qs[32]     32 bytes   low 8 bits of the grid index (into Iq2Grids.IQ1S, values -1/0/1) of each group of 8 weights
//   qh[8]      16 bytes   one uint16 per 32-weight sub-block: bits 3l..3l+2 the high 3 bits of group l's grid index,
//                         bits 12..14 the 3-bit sub-block scale ls, bit 15 the sign of the shift delta
// weight = d * (2*ls + 1) * (grid value + delta), delta = +-IQ1S_DELTA (0.125).

using System.Buffers.Binary;
using Squeeze.Numerics;
using static Squeeze.Quants.Iq2Quantizer;

namespace Squeeze.Quants;

/// <summary>Kernels of <see cref="GgmlType.IQ1_S"/> (dot products against <see cref="GgmlType.Q8_K"/>).</summary>
internal sealed partial class IQ1_S : IQuantKernel
{
    private const int QK_K = Iq2Quantizer.QK_K;
    private const int BlockBytes = 50;
    private const int BlockSize = 32;
    internal const float Delta = 0.125f;
    private const float GroupMaxEpsIq1S = 1e-12f;

    public GgmlType Type => GgmlType.IQ1_S;
    public GgmlType VecDotType => GgmlType.Q8_K;
    public bool RequiresImportance => true;

    private static readonly float[] XP = [-1 + Delta, Delta, 1 + Delta];
    private static readonly float[] XM = [-1 - Delta, -Delta, 1 - Delta];

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) throw new ArgumentException("IQ1_S needs importance weights (an imatrix)", nameof(importance));
        var t = Iq2Search.IQ1;
        int nbl = src.Length / QK_K;
        Span<float> scales = stackalloc float[QK_K / BlockSize];
        Span<float> weight = stackalloc float[BlockSize];
        Span<sbyte> L = stackalloc sbyte[BlockSize];
        Span<float> sumx = stackalloc float[BlockSize + 1];
        Span<float> sumw = stackalloc float[BlockSize + 1];
        Span<float> sorted = stackalloc float[BlockSize];
        Span<int> idx = stackalloc int[BlockSize];
        Span<int> index = stackalloc int[BlockSize / 8];
        Span<sbyte> shifts = stackalloc sbyte[QK_K / BlockSize];
        ReadOnlySpan<float> xp = XP, xm = XM;

        for (int ibl = 0; ibl < nbl; ibl++)
        {
            var y = dst.Slice(ibl * BlockBytes, BlockBytes);
            y.Clear(); // d = fp16 0, qs and qh zero
            float maxScale = 0;
            var xbl = src.Slice(QK_K * ibl, QK_K);
            float sumx2 = 0;
            for (int i = 0; i < QK_K; i++) sumx2 += xbl[i] * xbl[i];
            float sigma2 = 2 * sumx2 / QK_K;

            for (int ib = 0; ib < QK_K / BlockSize; ib++)
            {
                var xb = xbl.Slice(BlockSize * ib, BlockSize);
                var qw = importance.Slice(QK_K * ibl + BlockSize * ib, BlockSize);
                for (int i = 0; i < BlockSize; i++) weight[i] = qw[i] * MathF.Sqrt(sigma2 + xb[i] * xb[i]);
                float max = MathF.Abs(xb[0]);
                for (int i = 1; i < BlockSize; i++) max = Max(max, MathF.Abs(xb[i]));
                if (max < GroupMaxEpsIq1S)
                {
                    scales[ib] = 0;
                    shifts[ib] = 1;
                    L.Fill(1);
                    continue;
                }
                // The weighted least-squares problem over 3 levels is solved exactly: sort, then try every pair of
                // split points with prefix sums of w*x and w.
                StableSortWithIndex(xb, BlockSize, sorted, idx);
                sumx[0] = sumw[0] = 0;
                for (int j = 0; j < BlockSize; j++)
                {
                    int i = idx[j];
                    sumx[j + 1] = sumx[j] + weight[i] * xb[i];
                    sumw[j + 1] = sumw[j] + weight[i];
                }
                float bestScore = -float.MaxValue, scale = max;
                int besti1 = -1, besti2 = -1, bestShift = 0;
                for (int i1 = 0; i1 <= BlockSize; i1++)
                {
                    for (int i2 = i1; i2 <= BlockSize; i2++)
                    {
                        float sumqx = (sumx[i1] - sumx[0]) * xp[0] + (sumx[i2] - sumx[i1]) * xp[1] + (sumx[BlockSize] - sumx[i2]) * xp[2];
                        float sumq2 = (sumw[i1] - sumw[0]) * xp[0] * xp[0] + (sumw[i2] - sumw[i1]) * xp[1] * xp[1] + (sumw[BlockSize] - sumw[i2]) * xp[2] * xp[2];
                        if (sumq2 > 0 && sumqx * sumqx > bestScore * sumq2)
                        {
                            scale = sumqx / sumq2; bestScore = scale * sumqx;
                            besti1 = i1; besti2 = i2; bestShift = 1;
                        }
                        sumqx = (sumx[i1] - sumx[0]) * xm[0] + (sumx[i2] - sumx[i1]) * xm[1] + (sumx[BlockSize] - sumx[i2]) * xm[2];
                        sumq2 = (sumw[i1] - sumw[0]) * xm[0] * xm[0] + (sumw[i2] - sumw[i1]) * xm[1] * xm[1] + (sumw[BlockSize] - sumw[i2]) * xm[2] * xm[2];
                        if (sumq2 > 0 && sumqx * sumqx > bestScore * sumq2)
                        {
                            scale = sumqx / sumq2; bestScore = scale * sumqx;
                            besti1 = i1; besti2 = i2; bestShift = -1;
                        }
                    }
                }
                if (besti1 < 0 || besti2 < 0 || bestShift == 0)
                {
                    scales[ib] = 0;
                    shifts[ib] = 1;
                    L.Fill(1);
                    continue;
                }
                for (int j = 0; j < besti1; j++) L[idx[j]] = 0;
                for (int j = besti1; j < besti2; j++) L[idx[j]] = 1;
                for (int j = besti2; j < BlockSize; j++) L[idx[j]] = 2;
                if (scale < 0)
                {
                    for (int j = 0; j < BlockSize; j++) L[j] = (sbyte)(2 - L[j]);
                    scale = -scale; bestShift = -bestShift;
                }
                bool allOnGrid = true;
                ReadOnlySpan<float> xx = bestShift == 1 ? xp : xm;
                for (int k = 0; k < BlockSize / 8; k++)
                {
                    int u = IQ2_XXS.Code(L.Slice(8 * k, 8));
                    int gridIndex = t.GridIndex(u);
                    if (gridIndex < 0)
                    {
                        allOnGrid = false;
                        gridIndex = FindBestNeighbour2(t, u, xb.Slice(8 * k, 8), weight.Slice(8 * k, 8), scale, xx, L.Slice(8 * k, 8));
                    }
                    index[k] = gridIndex;
                }
                if (!allOnGrid)
                {
                    float sumqx = 0, sumq2 = 0;
                    for (int k = 0; k < BlockSize / 8; k++)
                    {
                        for (int j = 0; j < 8; j++)
                        {
                            float w = weight[8 * k + j];
                            float q = xx[t.Levels[8 * index[k] + j]];
                            sumqx += w * q * xb[8 * k + j];
                            sumq2 += w * q * q;
                        }
                    }
                    if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
                }
                int h = 0;
                for (int k = 0; k < BlockSize / 8; k++)
                {
                    y[2 + (BlockSize / 8) * ib + k] = (byte)index[k];
                    h |= (index[k] >> 8) << (3 * k);
                }
                BinaryPrimitives.WriteUInt16LittleEndian(y.Slice(34 + 2 * ib), (ushort)h);
                AssertScale(scale);
                scales[ib] = scale;
                shifts[ib] = (sbyte)bestShift;
                maxScale = Max(maxScale, scale);
            }

            if (maxScale == 0) continue;
            float d = maxScale / 15;
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(d * 1.125f));
            float id = 1 / d;
            for (int ib = 0; ib < QK_K / BlockSize; ib++)
            {
                int l = Math.Max(0, Math.Min(7, GgmlRounding.NearestInt(0.5f * (id * scales[ib] - 1))));
                if (shifts[ib] == -1) l |= 8;
                var qh = y.Slice(34 + 2 * ib, 2);
                BinaryPrimitives.WriteUInt16LittleEndian(qh, (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(qh) | (l << 12)));
            }
        }
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = dst.Length / QK_K;
        var grid = Iq2Grids.IQ1S;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x));
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                int qh = BinaryPrimitives.ReadUInt16LittleEndian(x.Slice(34 + 2 * ib));
                float dl = d * (2 * ((qh >> 12) & 7) + 1);
                float delta = (qh & 0x8000) != 0 ? -Delta : Delta;
                var y = dst.Slice(i * QK_K + 32 * ib, 32);
                for (int l = 0; l < 4; l++)
                {
                    ulong g = grid[x[2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)];
                    for (int j = 0; j < 8; j++) y[8 * l + j] = dl * ((sbyte)(g >> (8 * j)) + delta);
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

    // ggml's x86 form: grid terms in 8 lanes as in Iq2Dot; the delta terms through the Q8_K block sums, one
    // scalar accumulator fused as fma(d, sumi1, accum1); then hsum + IQ1S_DELTA * accum1.
    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        var grid = Iq2Grids.IQ1S;
        Span<float> acc = stackalloc float[8];
        Span<int> lanes = stackalloc int[8];
        acc.Clear();
        float accum1 = 0;
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var q8 = Iq2Dot.Q8Qs(y, i);
            lanes.Clear();
            int sumi1 = 0;
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                int qh = BinaryPrimitives.ReadUInt16LittleEndian(xb.Slice(34 + 2 * ib));
                int ls = 2 * ((qh >> 12) & 7) + 1;
                for (int l = 0; l < 4; l++)
                {
                    ulong g = grid[xb[2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)];
                    int s0 = 0, s1 = 0;
                    for (int j = 0; j < 4; j++) s0 += (sbyte)(g >> (8 * j)) * q8[32 * ib + 8 * l + j];
                    for (int j = 4; j < 8; j++) s1 += (sbyte)(g >> (8 * j)) * q8[32 * ib + 8 * l + j];
                    lanes[2 * l] += s0 * ls;
                    lanes[2 * l + 1] += s1 * ls;
                }
                sumi1 += (Iq2Dot.Q8BSum(y, i, 2 * ib) + Iq2Dot.Q8BSum(y, i, 2 * ib + 1)) * ((qh & 0x8000) != 0 ? -1 : 1) * ls;
            }
            float d = Iq2Dot.Q8D(y, i) * Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb));
            Iq2Dot.Accumulate(acc, d, lanes);
            accum1 = MathF.FusedMultiplyAdd(d, sumi1, accum1);
        }
        return Iq2Dot.HorizontalSum(acc) + Delta * accum1;
    }
}
