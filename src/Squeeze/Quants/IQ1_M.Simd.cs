using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

internal sealed partial class IQ1_M
{
    // AVX2, also used at the AVX-512 level (the grid rows are gathered with scalar loads either way).
    // Grid terms as |g| * sign(q8, g); delta terms as 1 * sign(q8, +-1) per group of 8; both times the 3-bit scales.
    private static float VecDotAvx2(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        int nb = n / QK_K;
        ref ulong g = ref MemoryMarshal.GetArrayDataReference(Iq2Grids.IQ1S);
        ref byte xr = ref MemoryMarshal.GetReference(x);
        ref byte yr = ref MemoryMarshal.GetReference(y);
        var acc1 = Vector256<float>.Zero;
        var acc2 = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            ref byte xb = ref Unsafe.Add(ref xr, i * BlockBytes);
            ref byte yb = ref Unsafe.Add(ref yr, i * Iq2Dot.Q8KBytes);
            ref byte q8 = ref Unsafe.Add(ref yb, 4);
            var sumi1 = Vector256<int>.Zero;
            var sumi2 = Vector256<int>.Zero;
            for (int ib = 0; ib < QK_K / 32; ib += 2)
            {
                // One scale word holds the four 3-bit scales of sub-blocks ib and ib+1.
                uint sc = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref xb, 48 + ib));
                var (a1, a2) = SubBlock(ref g, ref xb, ib, sc, ref Unsafe.Add(ref q8, 32 * ib));
                var (b1, b2) = SubBlock(ref g, ref xb, ib + 1, sc >> 6, ref Unsafe.Add(ref q8, 32 * ib + 32));
                sumi1 += a1 + b1;
                sumi2 += a2 + b2;
            }
            float d = Unsafe.ReadUnaligned<float>(ref yb) * Fp16.ToFloat(ScaleBits(MemoryMarshal.CreateReadOnlySpan(ref xb, BlockBytes)));
            var dv = Vector256.Create(d);
            acc1 = Fma.MultiplyAdd(dv, Avx.ConvertToVector256Single(sumi1), acc1);
            acc2 = Fma.MultiplyAdd(dv, Avx.ConvertToVector256Single(sumi2), acc2);
        }
        return Iq2Dot.HorizontalSum(acc1) + Delta * Iq2Dot.HorizontalSum(acc2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int> Grid, Vector256<int> Delta) SubBlock(ref ulong g, ref byte xb, int ib, uint sc, ref byte q8)
    {
        uint qs = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref xb, 4 * ib));
        uint qh0 = Unsafe.Add(ref xb, 32 + 2 * ib), qh1 = Unsafe.Add(ref xb, 33 + 2 * ib);
        var gv = Vector256.Create(
            Unsafe.Add(ref g, (qs & 255) | ((qh0 << 8) & 0x700)), Unsafe.Add(ref g, ((qs >> 8) & 255) | ((qh0 << 4) & 0x700)),
            Unsafe.Add(ref g, ((qs >> 16) & 255) | ((qh1 << 8) & 0x700)), Unsafe.Add(ref g, (qs >> 24) | ((qh1 << 4) & 0x700))).AsSByte();
        uint deltaBits = ((qh0 >> 3) & 1) | ((qh0 >> 6) & 2) | ((qh1 >> 1) & 4) | ((qh1 >> 4) & 8);
        var delta = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Iq2Dot.GroupSigns), (int)deltaBits);
        var ls = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Iq2Dot.TripletScales), (int)(sc & 63));
        var q8v = Vector256.LoadUnsafe(ref q8).AsSByte();
        var dot1 = Avx2.MultiplyAddAdjacent(Avx2.Abs(gv), Avx2.Sign(q8v, gv));
        var dot2 = Avx2.MultiplyAddAdjacent(Vector256.Create((byte)1), Avx2.Sign(q8v, delta));
        return (Avx2.MultiplyAddAdjacent(dot1, ls), Avx2.MultiplyAddAdjacent(dot2, ls));
    }

    // Eight splits per vector: every lane performs the scalar loop's multiplications and additions in the same
    // order (no fused multiply-add), so the sums are bitwise those of PairSumsScalar.
    private static void PairSumsAvx2(ReadOnlySpan<float> xb, ReadOnlySpan<float> weight, ReadOnlySpan<int> idx, Span<float> pairSums)
    {
        var xp0 = Vector256.Create(XP[0]); var xp1 = Vector256.Create(XP[1]); var xp2 = Vector256.Create(XP[2]);
        var xm0 = Vector256.Create(XM[0]); var xm1 = Vector256.Create(XM[1]); var xm2 = Vector256.Create(XM[2]);
        ref float ps = ref MemoryMarshal.GetReference(pairSums);
        for (int pr = 0; pr < PairStride; pr += 8)
        {
            var i1 = Vector256.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(PairI1), (nuint)pr);
            var i2 = Vector256.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(PairI2), (nuint)pr);
            Vector256<float> qx0 = default, qx1 = default, qx2 = default, qx3 = default;
            Vector256<float> q20 = default, q21 = default, q22 = default, q23 = default;
            for (int j = 0; j < BlockSize; j++)
            {
                var jv = Vector256.Create(j);
                var below1 = Vector256.LessThan(jv, i1).AsSingle();
                var below2 = Vector256.LessThan(jv, i2).AsSingle();
                var p = Vector256.ConditionalSelect(below1, xp0, Vector256.ConditionalSelect(below2, xp1, xp2));
                var m = Vector256.ConditionalSelect(below1, xm0, Vector256.ConditionalSelect(below2, xm1, xm2));
                int i = idx[j];
                var w = Vector256.Create(weight[i]);
                var x = Vector256.Create(xb[i]);
                var wp = w * p;
                var wm = w * m;
                var wpx = wp * x;
                var wmx = wm * x;
                var wpp = wp * p;
                var wmm = wm * m;
                qx0 += wpx; qx3 += wmx; q20 += wpp; q23 += wmm;
                if (i < BlockSize / 2)
                {
                    qx1 += wpx; qx2 += wmx; q21 += wpp; q22 += wmm;
                }
                else
                {
                    qx2 += wpx; qx1 += wmx; q22 += wpp; q21 += wmm;
                }
            }
            qx0.StoreUnsafe(ref ps, (nuint)(0 * PairStride + pr));
            qx1.StoreUnsafe(ref ps, (nuint)(1 * PairStride + pr));
            qx2.StoreUnsafe(ref ps, (nuint)(2 * PairStride + pr));
            qx3.StoreUnsafe(ref ps, (nuint)(3 * PairStride + pr));
            q20.StoreUnsafe(ref ps, (nuint)(4 * PairStride + pr));
            q21.StoreUnsafe(ref ps, (nuint)(5 * PairStride + pr));
            q22.StoreUnsafe(ref ps, (nuint)(6 * PairStride + pr));
            q23.StoreUnsafe(ref ps, (nuint)(7 * PairStride + pr));
        }
    }
}
