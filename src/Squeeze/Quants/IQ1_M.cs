// IQ1_M: 256 weights in 56 bytes (1.75 bits per weight), ggml's block_iq1_m. It has no d field of its own.
//   qs[32]     32 bytes   low 8 bits of the grid index (into Iq2Grids.IQ1S, values -1/0/1) of each group of 8 weights
//   qh[16]     16 bytes   one byte per 16 weights (two groups): bits 0..2 and 4..6 the high 3 bits of the two grid
//                         indices, bits 3 and 7 the signs of the two groups' shift delta
//   scales[8]   8 bytes   as 4 uint16: bits 0..11 hold four 3-bit scales ls (one per 16 weights, for 64 weights), bits
//                         12..15 a nibble of the fp16 super-block scale d (uint16 0 holds d's bits 0..3, ... 3 holds 12..15)
// weight = d * (2*ls + 1) * (grid value + delta), delta = +-IQ1M_DELTA (0.125).

using System.Buffers.Binary;
using Squeeze.Numerics;
using static Squeeze.Quants.Iq2Quantizer;

namespace Squeeze.Quants;

/// <summary>Kernels of <see cref="GgmlType.IQ1_M"/> (dot products against <see cref="GgmlType.Q8_K"/>).</summary>
internal sealed partial class IQ1_M : IQuantKernel
{
    private const int QK_K = Iq2Quantizer.QK_K;
    private const int BlockBytes = 56;
    private const int BlockSize = 16;
    internal const float Delta = 0.125f;
    private const float GroupMaxEpsIq1M = 1e-7f;

    public GgmlType Type => GgmlType.IQ1_M;
    public GgmlType VecDotType => GgmlType.Q8_K;

    /// <summary>
    /// False, as in ggml: <c>ggml_quantize_requires_imatrix</c> has IQ1_M commented out, and without importance weights
    /// the quantizer weighs each value by x^2.
    /// </summary>
    public bool RequiresImportance => false;

    private static readonly float[] XP = [-1 + Delta, Delta, 1 + Delta];
    private static readonly float[] XM = [-1 - Delta, -Delta, 1 - Delta];
    private static readonly byte[] Masks = [0x00, 0x80, 0x08, 0x88];

    /// <summary>The fp16 super-block scale gathered from the top nibbles of the four scale words.</summary>
    internal static ushort ScaleBits(ReadOnlySpan<byte> block)
    {
        int sc0 = BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(48)), sc1 = BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(50));
        int sc2 = BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(52)), sc3 = BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(54));
        return (ushort)((sc0 >> 12) | ((sc1 >> 8) & 0x00f0) | ((sc2 >> 4) & 0x0f00) | (sc3 & 0xf000));
    }

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        var t = Iq2Search.IQ1;
        int nbl = src.Length / QK_K;
        Span<float> scales = stackalloc float[QK_K / BlockSize];
        Span<float> weight = stackalloc float[BlockSize];
        Span<sbyte> L = stackalloc sbyte[BlockSize];
        Span<float> sorted = stackalloc float[BlockSize];
        Span<int> idx = stackalloc int[BlockSize];
        Span<int> index = stackalloc int[BlockSize / 8];
        Span<sbyte> shifts = stackalloc sbyte[QK_K / BlockSize];
        Span<float> pairSums = stackalloc float[8 * PairStride];
        Span<ushort> sc = stackalloc ushort[4];
        ReadOnlySpan<float> xp = XP, xm = XM;

        for (int ibl = 0; ibl < nbl; ibl++)
        {
            var y = dst.Slice(ibl * BlockBytes, BlockBytes);
            y.Clear();
            float maxScale = 0;
            var xbl = src.Slice(QK_K * ibl, QK_K);
            float sumx2 = 0;
            for (int i = 0; i < QK_K; i++) sumx2 += xbl[i] * xbl[i];
            float sigma2 = 2 * sumx2 / QK_K;

            for (int ib = 0; ib < QK_K / BlockSize; ib++)
            {
                var xb = xbl.Slice(BlockSize * ib, BlockSize);
                Weights(xb, importance, QK_K * ibl + BlockSize * ib, sigma2, weight);
                float max = MathF.Abs(xb[0]);
                for (int i = 1; i < BlockSize; i++) max = Max(max, MathF.Abs(xb[i]));
                if (max < GroupMaxEpsIq1M)
                {
                    scales[ib] = 0;
                    shifts[ib] = 0;
                    L.Fill(1);
                    continue;
                }
                StableSortWithIndex(xb, BlockSize, sorted, idx);
                float bestScore = -float.MaxValue, scale = max;
                int besti1 = -1, besti2 = -1, bestK = -1;
                // k: shifts of the two groups of 8, 0: (+,+), 1: (+,-), 2: (-,+), 3: (-,-).
                if (Simd.Level >= SimdLevel.Avx2) PairSumsAvx2(xb, weight, idx, pairSums);
                else PairSumsScalar(xb, weight, idx, pairSums);
                for (int pr = 0; pr < PairCount; pr++)
                {
                    for (int k = 0; k < 4; k++)
                    {
                        float qx = pairSums[k * PairStride + pr], q2 = pairSums[(4 + k) * PairStride + pr];
                        if (q2 > 0 && qx * qx > bestScore * q2)
                        {
                            scale = qx / q2; bestScore = scale * qx;
                            besti1 = PairI1[pr]; besti2 = PairI2[pr]; bestK = k;
                        }
                    }
                }
                if (besti1 < 0 || besti2 < 0 || bestK < 0)
                {
                    scales[ib] = 0;
                    shifts[ib] = 0;
                    L.Fill(1);
                    continue;
                }
                for (int j = 0; j < besti1; j++) L[idx[j]] = 0;
                for (int j = besti1; j < besti2; j++) L[idx[j]] = 1;
                for (int j = besti2; j < BlockSize; j++) L[idx[j]] = 2;
                if (scale < 0)
                {
                    for (int j = 0; j < BlockSize; j++) L[j] = (sbyte)(2 - L[j]);
                    scale = -scale;
                    bestK = 3 - bestK;
                }
                bool allOnGrid = true;
                for (int k = 0; k < BlockSize / 8; k++)
                {
                    ReadOnlySpan<float> xx = Shifted(bestK, k) ? xm : xp;
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
                    float sqx = 0, sq2 = 0;
                    for (int k = 0; k < BlockSize / 8; k++)
                    {
                        ReadOnlySpan<float> xx = Shifted(bestK, k) ? xm : xp;
                        for (int j = 0; j < 8; j++)
                        {
                            float w = weight[8 * k + j];
                            float q = xx[t.Levels[8 * index[k] + j]];
                            sqx += w * q * xb[8 * k + j];
                            sq2 += w * q * q;
                        }
                    }
                    if (sqx > 0 && sq2 > 0) scale = sqx / sq2;
                }
                y[2 * ib + 0] = (byte)index[0];
                y[2 * ib + 1] = (byte)index[1];
                y[32 + ib] = (byte)((index[0] >> 8) | ((index[1] >> 8) << 4));
                AssertScale(scale);
                scales[ib] = scale;
                shifts[ib] = (sbyte)bestK;
                maxScale = Max(maxScale, scale);
            }

            if (maxScale == 0) continue;
            sc.Clear();
            float d = maxScale / 15;
            float id = 1 / d;
            float sumqxF = 0, sumq2F = 0;
            for (int ib = 0; ib < QK_K / BlockSize; ib++)
            {
                int l = Math.Max(0, Math.Min(7, GgmlRounding.NearestInt(0.5f * (id * scales[ib] - 1))));
                sc[ib / 4] |= (ushort)(l << (3 * (ib % 4)));
                y[32 + ib] |= Masks[shifts[ib]];
                var xb = xbl.Slice(BlockSize * ib, BlockSize);
                Weights(xb, importance, QK_K * ibl + BlockSize * ib, sigma2, weight);
                for (int k = 0; k < BlockSize / 8; k++)
                {
                    ReadOnlySpan<float> xx = Shifted(shifts[ib], k) ? xm : xp;
                    int g = y[2 * ib + k] + ((y[32 + ib] << (8 - 4 * k)) & 0x700);
                    for (int j = 0; j < 8; j++)
                    {
                        float w = weight[8 * k + j];
                        float q = xx[t.Levels[8 * g + j]] * (2 * l + 1);
                        sumqxF += w * q * xb[8 * k + j];
                        sumq2F += w * q * q;
                    }
                }
            }
            if (sumq2F > 0) d = sumqxF / sumq2F;
            ushort s = Fp16.FromFloat(d * 1.1125f);
            sc[0] |= (ushort)((s & 0x000f) << 12);
            sc[1] |= (ushort)((s & 0x00f0) << 8);
            sc[2] |= (ushort)((s & 0x0f00) << 4);
            sc[3] |= (ushort)(s & 0xf000);
            for (int j = 0; j < 4; j++) BinaryPrimitives.WriteUInt16LittleEndian(y.Slice(48 + 2 * j), sc[j]);
        }
    }

    // The split points (i1, i2), 0 <= i1 <= i2 <= 16, in ggml's loop order, padded to whole vectors.
    private const int PairCount = (BlockSize + 1) * (BlockSize + 2) / 2;
    private const int PairStride = (PairCount + 15) / 16 * 16;
    private static readonly int[] PairI1 = new int[PairStride];
    private static readonly int[] PairI2 = new int[PairStride];

    static IQ1_M()
    {
        int p = 0;
        for (int i1 = 0; i1 <= BlockSize; i1++)
            for (int i2 = i1; i2 <= BlockSize; i2++) { PairI1[p] = i1; PairI2[p] = i2; p++; }
        for (; p < PairStride; p++) { PairI1[p] = BlockSize; PairI2[p] = BlockSize; }
    }

    /// <summary>
    /// For every split (i1, i2) and shift code k, ggml's sums over the 16 sorted weights: the weights below i1 take
    /// level -1, up to i2 level 0, the rest +1, each plus or minus delta per group of 8 as k says.
    /// <c>pairSums[k*PairStride + pair]</c> is sumqx[k], <c>pairSums[(4+k)*PairStride + pair]</c> is sumq2[k], each
    /// accumulated over j in ggml's order.
    /// </summary>
    private static void PairSumsScalar(ReadOnlySpan<float> xb, ReadOnlySpan<float> weight, ReadOnlySpan<int> idx, Span<float> pairSums)
    {
        ReadOnlySpan<float> xp = XP, xm = XM;
        Span<float> sumqx = stackalloc float[4];
        Span<float> sumq2 = stackalloc float[4];
        for (int pr = 0; pr < PairCount; pr++)
        {
            int i1 = PairI1[pr], i2 = PairI2[pr];
            sumqx.Clear();
            sumq2.Clear();
            for (int j = 0; j < BlockSize; j++)
            {
                int c = j < i1 ? 0 : j < i2 ? 1 : 2;
                int i = idx[j];
                float p = xp[c], m = xm[c];
                float w = weight[i], x = xb[i];
                float wp = w * p, wm = w * m;
                sumqx[0] += wp * x;
                sumqx[3] += wm * x;
                sumq2[0] += wp * p;
                sumq2[3] += wm * m;
                if (i < BlockSize / 2)
                {
                    sumqx[1] += wp * x; sumqx[2] += wm * x;
                    sumq2[1] += wp * p; sumq2[2] += wm * m;
                }
                else
                {
                    sumqx[2] += wp * x; sumqx[1] += wm * x;
                    sumq2[2] += wp * p; sumq2[1] += wm * m;
                }
            }
            for (int k = 0; k < 4; k++)
            {
                pairSums[k * PairStride + pr] = sumqx[k];
                pairSums[(4 + k) * PairStride + pr] = sumq2[k];
            }
        }
    }

    /// <summary>Whether group <paramref name="k"/> (0 or 1) of a 16-weight block with shift code <paramref name="shift"/> uses -delta.</summary>
    private static bool Shifted(int shift, int k) => k == 0 ? shift >= 2 : shift % 2 != 0;

    private static void Weights(ReadOnlySpan<float> xb, ReadOnlySpan<float> importance, int offset, float sigma2, Span<float> weight)
    {
        if (!importance.IsEmpty)
        {
            var qw = importance.Slice(offset, BlockSize);
            for (int i = 0; i < BlockSize; i++) weight[i] = qw[i] * MathF.Sqrt(sigma2 + xb[i] * xb[i]);
        }
        else
        {
            for (int i = 0; i < BlockSize; i++) weight[i] = xb[i] * xb[i];
        }
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = dst.Length / QK_K;
        var grid = Iq2Grids.IQ1S;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            float d = Fp16.ToFloat(ScaleBits(x));
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                int sc = BinaryPrimitives.ReadUInt16LittleEndian(x.Slice(48 + 2 * (ib / 2)));
                float dl1 = d * (2 * ((sc >> (6 * (ib % 2) + 0)) & 0x7) + 1);
                float dl2 = d * (2 * ((sc >> (6 * (ib % 2) + 3)) & 0x7) + 1);
                int qh0 = x[32 + 2 * ib], qh1 = x[33 + 2 * ib];
                var y = dst.Slice(i * QK_K + 32 * ib, 32);
                for (int l = 0; l < 4; l++)
                {
                    int qh = l < 2 ? qh0 : qh1;
                    int gi = x[4 * ib + l] | ((l % 2 == 0 ? qh << 8 : qh << 4) & 0x700);
                    float delta = (qh & (l % 2 == 0 ? 0x08 : 0x80)) != 0 ? -Delta : Delta;
                    float dl = l < 2 ? dl1 : dl2;
                    ulong g = grid[gi];
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

    // ggml's x86 form: grid terms and delta terms each in 8 lanes (Iq2Dot), hsum(grid) + IQ1M_DELTA * hsum(delta).
    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        var grid = Iq2Grids.IQ1S;
        Span<float> acc1 = stackalloc float[8];
        Span<float> acc2 = stackalloc float[8];
        Span<int> lanes1 = stackalloc int[8];
        Span<int> lanes2 = stackalloc int[8];
        acc1.Clear();
        acc2.Clear();
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var q8 = Iq2Dot.Q8Qs(y, i);
            lanes1.Clear();
            lanes2.Clear();
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                int sc = BinaryPrimitives.ReadUInt16LittleEndian(xb.Slice(48 + 2 * (ib / 2)));
                int ls1 = 2 * ((sc >> (6 * (ib % 2) + 0)) & 0x7) + 1;
                int ls2 = 2 * ((sc >> (6 * (ib % 2) + 3)) & 0x7) + 1;
                for (int l = 0; l < 4; l++)
                {
                    int qh = xb[32 + 2 * ib + l / 2];
                    int gi = xb[4 * ib + l] | ((l % 2 == 0 ? qh << 8 : qh << 4) & 0x700);
                    int delta = (qh & (l % 2 == 0 ? 0x08 : 0x80)) != 0 ? -1 : 1;
                    int ls = l < 2 ? ls1 : ls2;
                    ulong g = grid[gi];
                    int s0 = 0, s1 = 0, t0 = 0, t1 = 0;
                    for (int j = 0; j < 4; j++) { int q = q8[32 * ib + 8 * l + j]; s0 += (sbyte)(g >> (8 * j)) * q; t0 += q; }
                    for (int j = 4; j < 8; j++) { int q = q8[32 * ib + 8 * l + j]; s1 += (sbyte)(g >> (8 * j)) * q; t1 += q; }
                    lanes1[2 * l] += s0 * ls;
                    lanes1[2 * l + 1] += s1 * ls;
                    lanes2[2 * l] += t0 * delta * ls;
                    lanes2[2 * l + 1] += t1 * delta * ls;
                }
            }
            float d = Iq2Dot.Q8D(y, i) * Fp16.ToFloat(ScaleBits(xb));
            Iq2Dot.Accumulate(acc1, d, lanes1);
            Iq2Dot.Accumulate(acc2, d, lanes2);
        }
        return Iq2Dot.HorizontalSum(acc1) + Delta * Iq2Dot.HorizontalSum(acc2);
    }
}
