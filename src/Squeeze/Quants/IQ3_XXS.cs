// IQ3_XXS: 256 weights in 98 bytes (3.0625 bits per weight), ggml's block_iq3_xxs.
//   d        2 bytes   fp16 super-block scale
//   qs[64]  64 bytes   grid indices into Iq3xxsGrid, one per group of 4 weights (8 per 32-weight sub-block)
//   sas[8]  32 bytes   one uint32 per sub-block: bits 0..27 four 7-bit sign fields (one per 8 weights, the 8th
//                      sign restores even parity, see Iq2Grids.KSigns), bits 28..31 the 4-bit sub-block scale ls
// weight = d * (0.5 + ls) * 0.5 * grid byte * sign.

using System.Buffers.Binary;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>Kernels of <see cref="GgmlType.IQ3_XXS"/> (dot products against <see cref="GgmlType.Q8_K"/>).</summary>
internal sealed partial class IQ3_XXS : IQuantKernel
{
    private const int QK_K = 256;
    private const int BlockBytes = 98;

    public GgmlType Type => GgmlType.IQ3_XXS;
    public GgmlType VecDotType => GgmlType.Q8_K;
    public bool RequiresImportance => false;

    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        IqDot.CheckQuantizeArgs(src, dst, importance, QK_K, BlockBytes);
        int nbl = src.Length / QK_K;
        var t = Iq3Search.Grid256;
        Span<float> scales = stackalloc float[QK_K / 32];
        Span<float> weight = stackalloc float[32];
        Span<int> gridIndex = stackalloc int[8];
        Span<byte> signs = stackalloc byte[4];
        Span<byte> q3 = stackalloc byte[BlockBytes - 2];
        for (int ibl = 0; ibl < nbl; ibl++)
        {
            var y = dst.Slice(ibl * BlockBytes, BlockBytes);
            var xbl = src.Slice(QK_K * ibl, QK_K);
            q3.Clear();
            float maxScale = 0;
            float sumx2 = 0;
            for (int i = 0; i < QK_K; i++) sumx2 += xbl[i] * xbl[i];
            float sigma2 = 2 * sumx2 / QK_K;

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
                float scale = Iq3Quantizer.QuantizeSubBlock(t, xxs: true, xb, weight, gridIndex, signs, out bool skipped);
                if (skipped)
                {
                    scales[ib] = 0;
                    continue;
                }
                for (int k = 0; k < 8; k++) q3[8 * ib + k] = (byte)gridIndex[k];
                uint sas = signs[0] | (uint)signs[1] << 7 | (uint)signs[2] << 14 | (uint)signs[3] << 21;
                BinaryPrimitives.WriteUInt32LittleEndian(q3.Slice(QK_K / 4 + 4 * ib), sas);
                scales[ib] = scale;
                maxScale = maxScale > scale ? maxScale : scale;
            }

            if (maxScale == 0)
            {
                y.Clear();
                continue;
            }
            float d = maxScale / 31;
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(d * 1.0125f));
            float id = 1 / d;
            for (int ib = 0; ib < QK_K / 32; ib++)
            {
                int l = GgmlRounding.NearestInt(0.5f * (id * scales[ib] - 1));
                l = Math.Max(0, Math.Min(15, l));
                var field = q3.Slice(QK_K / 4 + 4 * ib, 4);
                BinaryPrimitives.WriteUInt32LittleEndian(field, BinaryPrimitives.ReadUInt32LittleEndian(field) | (uint)l << 28);
            }
            q3.CopyTo(y.Slice(2));
        }
    }

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        IqDot.CheckDequantizeArgs(src, dst, QK_K, BlockBytes);
        int nb = dst.Length / QK_K;
        var grid = Iq3Grids.Iq3xxsGrid;
        ReadOnlySpan<byte> ksigns = Iq2Grids.KSigns;
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * BlockBytes, BlockBytes);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x));
            var qs = x.Slice(2, QK_K / 4);
            var sas = x.Slice(2 + QK_K / 4);
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                uint aux32 = BinaryPrimitives.ReadUInt32LittleEndian(sas.Slice(4 * ib32));
                float db = d * (0.5f + (aux32 >> 28)) * 0.5f;
                for (int l = 0; l < 4; l++)
                {
                    byte s = ksigns[(int)((aux32 >> 7 * l) & 127)];
                    uint g1 = grid[qs[8 * ib32 + 2 * l]];
                    uint g2 = grid[qs[8 * ib32 + 2 * l + 1]];
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
    /// The scalar reference. It keeps ggml-cpu's x86 accumulation order (eight int32 lanes of four products each
    /// per block, fused multiply-add into eight float lanes, then ggml's horizontal sum), so every level returns the
    /// same bits as ggml.
    /// </summary>
    internal static float VecDotScalar(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        var grid = Iq3Grids.Iq3xxsGrid;
        ReadOnlySpan<byte> ksigns = Iq2Grids.KSigns;
        Span<float> acc = stackalloc float[8];
        Span<int> lanes = stackalloc int[8];
        acc.Clear();
        for (int i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * BlockBytes, BlockBytes);
            var yb = y.Slice(i * IqDot.Q8KBytes, IqDot.Q8KBytes);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(xb)) * IqDot.Q8KD(yb);
            var qs = xb.Slice(2, QK_K / 4);
            var sas = xb.Slice(2 + QK_K / 4);
            var q8 = IqDot.Q8KQs(yb);
            lanes.Clear();
            for (int ib32 = 0; ib32 < QK_K / 32; ib32++)
            {
                uint aux32 = BinaryPrimitives.ReadUInt32LittleEndian(sas.Slice(4 * ib32));
                int ls = 2 * (int)(aux32 >> 28) + 1;
                for (int l = 0; l < 4; l++)
                {
                    byte s = ksigns[(int)((aux32 >> 7 * l) & 127)];
                    for (int half = 0; half < 2; half++)
                    {
                        uint g = grid[qs[8 * ib32 + 2 * l + half]];
                        int sum = 0;
                        for (int j = 0; j < 4; j++)
                        {
                            int q = q8[32 * ib32 + 8 * l + 4 * half + j];
                            // _mm256_sign_epi8 wraps -(-128) to -128; keep that so all levels agree on any input.
                            if ((s & (1 << (4 * half + j))) != 0) q = (sbyte)-q;
                            sum += (byte)(g >> 8 * j) * q;
                        }
                        lanes[2 * l + half] += sum * ls;
                    }
                }
            }
            for (int j = 0; j < 8; j++) acc[j] = MathF.FusedMultiplyAdd(d, lanes[j], acc[j]);
        }
        return 0.25f * IqDot.HorizontalSum8(acc);
    }
}
