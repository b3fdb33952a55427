using System.Buffers.Binary;
using Squeeze.Numerics;
using static Squeeze.Quants.Iq2Quantizer;

namespace Squeeze.Quants;

/// <summary>
/// The quantizer IQ2_XS and IQ2_S share (ggml's <c>quantize_row_iq2_xs_impl</c> and <c>quantize_row_iq2_s_impl</c>):
/// 16-weight sub-blocks, two grid points each, a search over 19 trial scales, and a 4-bit scale per sub-block.
/// They differ in the grid, how signs are stored (IQ2_XS implies the 8th sign by parity), the weights without an
/// imatrix (IQ2_S only), the zero threshold and the super-block scale's fudge factor.
/// </summary>
internal static class Iq2SixteenQuantizer
{
    public enum Variant { IQ2_XS, IQ2_S }

    private const float GroupMaxEpsIq2S = 1e-8f;

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance, Variant variant)
    {
        const int kMaxQ = 3;
        bool isS = variant == Variant.IQ2_S;
        var t = isS ? Iq2Search.IQ2_S : Iq2Search.IQ2_XS;
        int blockBytes = isS ? 82 : 74;
        int nbl = src.Length / QK_K;
        Span<float> scales = stackalloc float[QK_K / 16];
        Span<float> weight = stackalloc float[16];
        Span<float> xval = stackalloc float[16];
        Span<float> waux = stackalloc float[16];
        Span<sbyte> L = stackalloc sbyte[16];
        Span<sbyte> Laux = stackalloc sbyte[16];
        Span<bool> isOnGrid = stackalloc bool[2];
        Span<bool> isOnGridAux = stackalloc bool[2];
        Span<byte> blockSigns = stackalloc byte[2];
        Span<ushort> q2 = stackalloc ushort[2 * (QK_K / 16)];

        for (int ibl = 0; ibl < nbl; ibl++)
        {
            var y = dst.Slice(ibl * blockBytes, blockBytes);
            if (isS) y.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(0f));
            if (!isS)
            {
                q2.Clear();
                y.Slice(66, 8).Clear();
            }
            float maxScale = 0;
            var xbl = src.Slice(QK_K * ibl, QK_K);
            float sumx2 = 0;
            for (int i = 0; i < QK_K; i++) sumx2 += xbl[i] * xbl[i];
            float sigma2 = isS ? 2 * sumx2 / QK_K : sumx2 / QK_K;

            for (int ib = 0; ib < QK_K / 16; ib++)
            {
                var xb = xbl.Slice(16 * ib, 16);
                if (!importance.IsEmpty)
                {
                    var qw = importance.Slice(QK_K * ibl + 16 * ib, 16);
                    for (int i = 0; i < 16; i++) weight[i] = qw[i] * MathF.Sqrt(sigma2 + xb[i] * xb[i]);
                }
                else
                {
                    for (int i = 0; i < 16; i++) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
                }
                for (int i = 0; i < 16; i++) waux[i] = MathF.Sqrt(weight[i]);
                for (int k = 0; k < 2; k++)
                {
                    if (isS)
                    {
                        int s = 0;
                        for (int i = 0; i < 8; i++)
                        {
                            if (xb[8 * k + i] >= 0) xval[8 * k + i] = xb[8 * k + i];
                            else
                            {
                                xval[8 * k + i] = -xb[8 * k + i]; s |= 1 << i;
                            }
                        }
                        blockSigns[k] = (byte)s;
                    }
                    else
                    {
                        blockSigns[k] = (byte)(IQ2_XXS.FoldSigns(xb.Slice(8 * k, 8), weight.Slice(8 * k, 8), xval.Slice(8 * k, 8)) & 127);
                    }
                }
                float max = xval[0];
                for (int i = 1; i < 16; i++) max = Max(max, xval[i]);
                L.Clear();
                if (max < (isS ? GroupMaxEpsIq2S : GroupMaxEps))
                {
                    scales[ib] = 0;
                    continue;
                }
                float best = 0;
                float scale = max / (2 * kMaxQ - 1);
                isOnGrid[0] = isOnGrid[1] = true;
                for (int @is = -9; @is <= 9; @is++)
                {
                    float id = (2 * kMaxQ - 1 + @is * 0.1f) / max;
                    float thisScale = 1 / id;
                    for (int k = 0; k < 2; k++)
                    {
                        int u = 0;
                        for (int i = 0; i < 8; i++)
                        {
                            int l = Clamp(GgmlRounding.NearestInt(0.5f * (id * xval[8 * k + i] - 1)), kMaxQ - 1);
                            Laux[8 * k + i] = (sbyte)l;
                            u |= l << (2 * i);
                        }
                        isOnGridAux[k] = true;
                        if (t.GridIndex(u) < 0)
                        {
                            isOnGridAux[k] = false;
                            FindBestNeighbour(t, u, xval.Slice(8 * k, 8), waux.Slice(8 * k, 8), thisScale, Laux.Slice(8 * k, 8));
                        }
                    }
                    float sumqx = 0, sumq2 = 0;
                    for (int i = 0; i < 16; i++)
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
                        isOnGrid[0] = isOnGridAux[0]; isOnGrid[1] = isOnGridAux[1];
                    }
                }
                int nNotOnGrid = (isOnGrid[0] ? 0 : 1) + (isOnGrid[1] ? 0 : 1);
                if (nNotOnGrid > 0 && scale > 0)
                {
                    float id = 1 / scale;
                    for (int k = 0; k < 2; k++)
                    {
                        if (isOnGrid[k]) continue;
                        int u = 0;
                        for (int i = 0; i < 8; i++)
                        {
                            int l = Clamp(GgmlRounding.NearestInt(0.5f * (id * xval[8 * k + i] - 1)), kMaxQ - 1);
                            u |= l << (2 * i);
                            L[8 * k + i] = (sbyte)l;
                        }
                        if (t.GridIndex(u) < 0)
                            FindBestNeighbour(t, u, xval.Slice(8 * k, 8), waux.Slice(8 * k, 8), scale, L.Slice(8 * k, 8));
                    }
                    float sumqx = 0, sumq2 = 0;
                    for (int i = 0; i < 16; i++)
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
                    scale = -scale;
                    for (int k = 0; k < 2; k++) blockSigns[k] = (byte)(isS ? ~blockSigns[k] : ~blockSigns[k] & 127);
                }
                for (int k = 0; k < 2; k++)
                {
                    int gridIndex = OnGrid(t, IQ2_XXS.Code(L.Slice(8 * k, 8)));
                    if (isS)
                    {
                        int i8 = 2 * ib + k;
                        y[2 + i8] = (byte)gridIndex;
                        y[2 + 64 + i8 / 4] |= (byte)((gridIndex >> 8) << (2 * (i8 % 4)));
                        y[2 + QK_K / 8 + i8] = blockSigns[k];
                    }
                    else
                    {
                        q2[2 * ib + k] = (ushort)(gridIndex | (blockSigns[k] << 9));
                    }
                }
                AssertScale(scale);
                scales[ib] = scale;
                maxScale = Max(maxScale, scale);
            }

            if (maxScale == 0)
            {
                if (!isS) y.Slice(2, 64).Clear();
                continue;
            }
            float d = maxScale / 31;
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(isS ? d * 0.9875f : d));
            float idd = 1 / d;
            var sc = y.Slice(isS ? 74 : 66, 8);
            for (int ib = 0; ib < QK_K / 16; ib++)
            {
                int l = Math.Max(0, Math.Min(15, GgmlRounding.NearestInt(0.5f * (idd * scales[ib] - 1))));
                if (ib % 2 == 0) sc[ib / 2] = (byte)l;
                else sc[ib / 2] |= (byte)(l << 4);
            }
            if (!isS)
                for (int j = 0; j < q2.Length; j++) BinaryPrimitives.WriteUInt16LittleEndian(y.Slice(2 + 2 * j), q2[j]);
        }
    }
}
