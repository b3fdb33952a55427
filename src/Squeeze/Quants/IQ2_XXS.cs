// IQ2_XXS: 256 weights in 66 bytes (2.0625 bits per weight), ggml's block_iq2_xxs.
//   d        2 bytes   fp16 super-block scale
//   qs[32]  64 bytes   per 32-weight sub-block two uint32: the first holds 4 grid indices into Iq2Grids.IQ2XXS
//                      (one byte per group of 8 weights); the second holds four 7-bit sign fields (bits 0..27,
//                      the 8th sign of each group restores even parity, see Iq2Grids.KSigns) and the 4-bit
//                      sub-block scale ls in bits 28..31
// weight = d * (0.5 + ls) * 0.25 * grid byte * sign.

using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Squeeze.Numerics;
using static Squeeze.Quants.Iq2Quantizer;

namespace Squeeze.Quants;

/// <summary>Kernels of <see cref="GgmlType.IQ2_XXS"/> (dot products against <see cref="GgmlType.Q8_K"/>).</summary>
internal sealed partial class IQ2_XXS : IQuantKernel
{
    private const int QK_K = Iq2Quantizer.QK_K;
    private const int BlockBytes = 66;

    public GgmlType Type => GgmlType.IQ2_XXS;
    public GgmlType VecDotType => GgmlType.Q8_K;
    public bool RequiresImportance => true;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) throw new ArgumentException("IQ2_XXS needs importance weights (an imatrix)", nameof(importance));
        const int kMaxQ = 3;
        var t = Iq2Search.IQ2_XXS;
        int nbl = src.Length / QK_K;
        Span<float> scales = stackalloc float[QK_K / 32];
        Span<float> weight = stackalloc float[32];
        Span<float> xval = stackalloc float[32];
        Span<float> waux = stackalloc float[32];
        Span<sbyte> L = stackalloc sbyte[32];
        Span<sbyte> Laux = stackalloc sbyte[32];
        Span<byte> blockSigns = stackalloc byte[4];
        Span<uint> q2 = stackalloc uint[2 * (QK_K / 32)];

        for (int ibl = 0; ibl < nbl; ibl++)
        {
            var y = dst.Slice(ibl * BlockBytes, BlockBytes);
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(0f));
            q2.Clear();
            float maxScale = 0;
            var xbl = src.Slice(QK_K * ibl, QK_K);
            float sumx2 = 0;
            for (int i = 0; i < QK_K; i++) sumx2 += xbl[i] * xbl[i];
            float sigma2 = sumx2 / QK_K;

            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                var xb = xbl.Slice(32 * ib, 32);
                var qw = importance.Slice(QK_K * ibl + 32 * ib, 32);
                for (int i = 0; i < 32; i++) weight[i] = qw[i] * MathF.Sqrt(sigma2 + xb[i] * xb[i]);
                for (int i = 0; i < 32; i++) waux[i] = MathF.Sqrt(weight[i]);
                for (int k = 0; k < 4; k++)
                    blockSigns[k] = (byte)(FoldSigns(xb.Slice(8 * k, 8), weight.Slice(8 * k, 8), xval.Slice(8 * k, 8)) & 127);
                float max = xval[0];
                for (int i = 1; i < 32; i++) max = Max(max, xval[i]);
                if (max < GroupMaxEps)
                {
                    scales[ib] = 0;
                    L.Clear();
                    continue;
                }
                float scale = MakeQpQuants(32, kMaxQ + 1, xval, MemoryMarshal.Cast<sbyte, byte>(L), weight);
                float effMax = scale * kMaxQ;
                if (effMax <= 0)
                {
                    scales[ib] = 0;
                    L.Clear();
                    continue;
                }
                float best = 0;
                for (int @is = -6; @is <= 6; @is++)
                {
                    float id = (2 * kMaxQ - 1 + @is * 0.1f) / effMax;
                    float thisScale = 1 / id;
                    for (int k = 0; k < 4; k++)
                    {
                        int u = 0;
                        for (int i = 0; i < 8; i++)
                        {
                            int l = Clamp(GgmlRounding.NearestInt(0.5f * (id * xval[8 * k + i] - 1)), kMaxQ - 1);
                            Laux[8 * k + i] = (sbyte)l;
                            u |= l << (2 * i);
                        }
                        if (t.GridIndex(u) < 0)
                            FindBestNeighbour(t, u, xval.Slice(8 * k, 8), waux.Slice(8 * k, 8), thisScale, Laux.Slice(8 * k, 8));
                    }
                    float sumqx = 0, sumq2 = 0;
                    for (int i = 0; i < 32; i++)
                    {
                        float w = weight[i];
                        float q = 2 * Laux[i] + 1;
                        sumqx += w * xval[i] * q;
                        sumq2 += w * q * q;
                    }
                    if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
                    {
                        scale = sumqx / sumq2; best = scale * sumqx;
                        Laux.CopyTo(L);
                    }
                }
                if (scale > 0)
                {
                    float id = 1 / scale;
                    for (int k = 0; k < 4; k++)
                    {
                        int u = 0;
                        for (int i = 0; i < 8; i++)
                        {
                            int l = Clamp(GgmlRounding.NearestInt(0.5f * (id * xval[8 * k + i] - 1)), kMaxQ - 1);
                            u |= l << (2 * i);
                        }
                        int gridIndex = t.GridIndex(u);
                        if (gridIndex < 0)
                            gridIndex = FindBestNeighbour(t, u, xval.Slice(8 * k, 8), waux.Slice(8 * k, 8), scale, L.Slice(8 * k, 8));
                        for (int i = 0; i < 8; i++) L[8 * k + i] = t.Levels[8 * gridIndex + i];
                    }
                    float sumqx = 0, sumq2 = 0;
                    for (int i = 0; i < 32; i++)
                    {
                        float w = weight[i];
                        float q = 2 * L[i] + 1;
                        sumqx += w * xval[i] * q;
                        sumq2 += w * q * q;
                    }
                    if (sumq2 > 0) scale = sumqx / sumq2;
                }
                if (scale < 0)
                {
                    // Cannot happen for non-negative xval, but ggml guards it: flip the scale and the signs.
                    scale = -scale;
                    for (int k = 0; k < 4; k++) blockSigns[k] = (byte)(~blockSigns[k] & 127);
                }
                for (int k = 0; k < 4; k++)
                {
                    int gridIndex = OnGrid(t, Code(L.Slice(8 * k, 8)));
                    q2[2 * ib + 0] |= (uint)gridIndex << (8 * k);
                    q2[2 * ib + 1] |= (uint)blockSigns[k] << (7 * k);
                }
                AssertScale(scale);
                scales[ib] = scale;
                maxScale = Max(maxScale, scale);
            }

            var qs = y.Slice(2);
            if (maxScale == 0)
            {
                qs.Clear();
                continue;
            }
            float d = maxScale / 31;
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(d));
            float idd = 1 / d;
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                int l = Math.Max(0, Math.Min(15, GgmlRounding.NearestInt(0.5f * (idd * scales[ib] - 1))));
                q2[2 * ib + 1] |= (uint)l << 28;
            }
            for (int j = 0; j < q2.Length; j++) BinaryPrimitives.WriteUInt32LittleEndian(qs.Slice(4 * j), q2[j]);
        }
    }

    /// <summary>
    /// Absolute values of 8 weights into <paramref name="xval"/> and their sign bits; with an odd count of negatives,
    /// the weight of least importance <c>w*x*x</c> has its sign flipped (stored as negative magnitude), so the
    /// count is even and the 8th sign can be implied. Returns the sign bits.
    /// </summary>
    internal static int FoldSigns(ReadOnlySpan<float> xb, ReadOnlySpan<float> weight, Span<float> xval)
    {
        int nflip = 0, s = 0;
        for (int i = 0; i < 8; i++)
        {
            if (xb[i] >= 0) xval[i] = xb[i];
            else
            {
                xval[i] = -xb[i]; nflip++; s |= 1 << i;
            }
        }
        if (nflip % 2 != 0)
        {
            int imin = 0;
            float min = weight[0] * xb[0] * xb[0];
            for (int i = 1; i < 8; i++)
            {
                float ax = weight[i] * xb[i] * xb[i];
                if (ax < min)
                {
                    min = ax; imin = i;
                }
            }
            xval[imin] = -xval[imin];
            s ^= 1 << imin;
        }
        return s;
    }

    /// <summary>ggml's <c>u |= L[i] &lt;&lt; 2*i</c> into a <c>uint16_t</c>, for levels as stored (int8).</summary>
    internal static int Code(ReadOnlySpan<sbyte> L)
    {
        int u = 0;
        for (int i = 0; i < 8; i++) u |= L[i] << (2 * i);
        return (ushort)u;
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = dst.Length / QK_K;
        var grid = Iq2Grids.IQ2XXS;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x));
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                uint aux0 = BinaryPrimitives.ReadUInt32LittleEndian(x.Slice(2 + 8 * ib32));
                uint aux1 = BinaryPrimitives.ReadUInt32LittleEndian(x.Slice(6 + 8 * ib32));
                float db = d * (0.5f + (aux1 >> 28)) * 0.25f;
                var y = dst.Slice(i * QK_K + 32 * ib32, 32);
                for (int l = 0; l < 4; l++)
                {
                    ulong g = grid[(aux0 >> (8 * l)) & 255];
                    byte signs = Iq2Grids.KSigns[(aux1 >> (7 * l)) & 127];
                    for (int j = 0; j < 8; j++)
                        y[8 * l + j] = db * (byte)(g >> (8 * j)) * ((signs & Iq2Grids.KMask[j]) != 0 ? -1f : 1f);
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
        var grid = Iq2Grids.IQ2XXS;
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
                uint aux0 = BinaryPrimitives.ReadUInt32LittleEndian(xb.Slice(2 + 8 * ib32));
                uint aux1 = BinaryPrimitives.ReadUInt32LittleEndian(xb.Slice(6 + 8 * ib32));
                int ls = (int)(2 * (aux1 >> 28) + 1);
                for (int l = 0; l < 4; l++)
                {
                    ulong g = grid[(aux0 >> (8 * l)) & 255];
                    byte signs = Iq2Grids.KSigns[(aux1 >> (7 * l)) & 127];
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
