using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

public sealed partial class F16Kernel
{
    /// <summary>8 zero-extended halves to floats, exact for every half (the repacked kernels' fp16 scales).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Widen(Vector256<uint> h) => Fp16.Widen(h.AsInt32());

    /// <summary>
    /// Float to half on 16 lanes by ggml's bit recipe (<c>ggml_compute_fp32_to_fp16</c>): scaling by 2^112 and
    /// 2^-110 lets the float adder round the mantissa to nearest even (subnormal halves included), overflow
    /// becomes infinity and any NaN 0x7E00 with its sign, the same bits as <see cref="Numerics.Fp16.FromFloat"/>.
    /// </summary>
    private static int Quantize256(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        ref float ps = ref MemoryMarshal.GetReference(src);
        ref ushort pd = ref MemoryMarshal.GetReference(dst);
        var scaleToInf = Vector256.Create(BitConverter.UInt32BitsToSingle(0x77800000u));
        var scaleToZero = Vector256.Create(BitConverter.UInt32BitsToSingle(0x08800000u));
        int i = 0;
        for (; i + 16 <= src.Length; i += 16)
        {
            var lo = Narrow(Vector256.LoadUnsafe(ref ps, (nuint)i), scaleToInf, scaleToZero);
            var hi = Narrow(Vector256.LoadUnsafe(ref ps, (nuint)i + 8), scaleToInf, scaleToZero);
            Vector256.Narrow(lo, hi).StoreUnsafe(ref pd, (nuint)i);
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Narrow(Vector256<float> f, Vector256<float> scaleToInf, Vector256<float> scaleToZero)
    {
        var b = Vector256.Abs(f) * scaleToInf * scaleToZero;
        var w = f.AsUInt32();
        var shl1W = w + w;
        var sign = w & Vector256.Create(0x80000000u);
        var bias = Vector256.Max(shl1W & Vector256.Create(0xFF000000u), Vector256.Create(0x71000000u));
        b = ((bias >> 1) + Vector256.Create(0x07800000u)).AsSingle() + b;
        var bits = b.AsUInt32();
        var nonSign = ((bits >> 13) & Vector256.Create(0x7C00u)) + (bits & Vector256.Create(0xFFFu));
        var isNaN = Vector256.GreaterThan(shl1W, Vector256.Create(0xFF000000u));
        return (sign >> 16) | Vector256.ConditionalSelect(isNaN, Vector256.Create(0x7E00u), nonSign);
    }

    // Fast widening with the Inf/NaN guard (a row with such a half is widened again exactly); tinyBLAS's batched
    // products widen every weight row through here.
    private static int Dequantize256(ReadOnlySpan<ushort> h, Span<float> dst)
    {
        ref ushort ph = ref MemoryMarshal.GetReference(h);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (Simd.Level >= SimdLevel.Avx512)
        {
            Vector512<int> guard = default;
            for (; i + 16 <= h.Length; i += 16) Fp16.Load16(ref ph, (nuint)i, ref guard).StoreUnsafe(ref pd, (nuint)i);
            if (Fp16.HasSpecial(guard))
                for (int j = 0; j < i; j += 16) Fp16.Load16Exact(ref ph, (nuint)j).StoreUnsafe(ref pd, (nuint)j);
        }
        int start = i;
        Vector256<int> g = default;
        for (; i + 8 <= h.Length; i += 8) Fp16.Load8(ref ph, (nuint)i, ref g).StoreUnsafe(ref pd, (nuint)i);
        if (Fp16.HasSpecial(g))
            for (int j = start; j < i; j += 8) Fp16.Load8Exact(ref ph, (nuint)j).StoreUnsafe(ref pd, (nuint)j);
        return i;
    }

    // The bodies widen with the fast loaders (exact for finite halves) and, if a guard saw an Inf or NaN, run again
    // with the exact ones: the same accumulators and order either way.

    private static float Body512(ReadOnlySpan<ushort> x, ReadOnlySpan<ushort> y, int np)
    {
        ref ushort px = ref MemoryMarshal.GetReference(x);
        ref ushort py = ref MemoryMarshal.GetReference(y);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<int> gx = default, gy = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector512.FusedMultiplyAdd(Fp16.Load16(ref px, o, ref gx), Fp16.Load16(ref py, o, ref gy), a0);
            a1 = Vector512.FusedMultiplyAdd(Fp16.Load16(ref px, o + 16, ref gx), Fp16.Load16(ref py, o + 16, ref gy), a1);
            a2 = Vector512.FusedMultiplyAdd(Fp16.Load16(ref px, o + 32, ref gx), Fp16.Load16(ref py, o + 32, ref gy), a2);
            a3 = Vector512.FusedMultiplyAdd(Fp16.Load16(ref px, o + 48, ref gx), Fp16.Load16(ref py, o + 48, ref gy), a3);
        }
        if (Fp16.HasSpecial(Vector512.Max(gx, gy))) return Body512Exact(ref px, ref py, np);
        return Lanes.Reduce16((a0 + a2) + (a1 + a3));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Body512Exact(ref ushort px, ref ushort py, int np)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector512.FusedMultiplyAdd(Fp16.Load16Exact(ref px, o), Fp16.Load16Exact(ref py, o), a0);
            a1 = Vector512.FusedMultiplyAdd(Fp16.Load16Exact(ref px, o + 16), Fp16.Load16Exact(ref py, o + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(Fp16.Load16Exact(ref px, o + 32), Fp16.Load16Exact(ref py, o + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(Fp16.Load16Exact(ref px, o + 48), Fp16.Load16Exact(ref py, o + 48), a3);
        }
        return Lanes.Reduce16((a0 + a2) + (a1 + a3));
    }

    // AVX2: each 16-lane accumulator of the AVX-512 order is kept as two 8-lane halves (a0/a1 = accumulator 0, ...).
    private static float Body256(ReadOnlySpan<ushort> x, ReadOnlySpan<ushort> y, int np)
    {
        ref ushort px = ref MemoryMarshal.GetReference(x);
        ref ushort py = ref MemoryMarshal.GetReference(y);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector256<int> gx = default, gy = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref px, o, ref gx), Fp16.Load8(ref py, o, ref gy), a0);
            a1 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref px, o + 8, ref gx), Fp16.Load8(ref py, o + 8, ref gy), a1);
            a2 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref px, o + 16, ref gx), Fp16.Load8(ref py, o + 16, ref gy), a2);
            a3 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref px, o + 24, ref gx), Fp16.Load8(ref py, o + 24, ref gy), a3);
            a4 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref px, o + 32, ref gx), Fp16.Load8(ref py, o + 32, ref gy), a4);
            a5 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref px, o + 40, ref gx), Fp16.Load8(ref py, o + 40, ref gy), a5);
            a6 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref px, o + 48, ref gx), Fp16.Load8(ref py, o + 48, ref gy), a6);
            a7 = Vector256.FusedMultiplyAdd(Fp16.Load8(ref px, o + 56, ref gx), Fp16.Load8(ref py, o + 56, ref gy), a7);
        }
        if (Fp16.HasSpecial(Vector256.Max(gx, gy))) return Body256Exact(ref px, ref py, np);
        return Lanes.Reduce16((a0 + a4) + (a2 + a6), (a1 + a5) + (a3 + a7));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Body256Exact(ref ushort px, ref ushort py, int np)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int i = 0; i < np; i += Step)
        {
            nuint o = (nuint)i;
            a0 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref px, o), Fp16.Load8Exact(ref py, o), a0);
            a1 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref px, o + 8), Fp16.Load8Exact(ref py, o + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref px, o + 16), Fp16.Load8Exact(ref py, o + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref px, o + 24), Fp16.Load8Exact(ref py, o + 24), a3);
            a4 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref px, o + 32), Fp16.Load8Exact(ref py, o + 32), a4);
            a5 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref px, o + 40), Fp16.Load8Exact(ref py, o + 40), a5);
            a6 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref px, o + 48), Fp16.Load8Exact(ref py, o + 48), a6);
            a7 = Vector256.FusedMultiplyAdd(Fp16.Load8Exact(ref px, o + 56), Fp16.Load8Exact(ref py, o + 56), a7);
        }
        return Lanes.Reduce16((a0 + a4) + (a2 + a6), (a1 + a5) + (a3 + a7));
    }

    // Vector128 (SSE4.1 or AdvSimd): the AVX-512 order's 64 accumulator lanes held as 16 four-lane vectors, stored and
    // reduced as the scalar reference reduces them; rows with an Inf or NaN go to the scalar reference.
    private static float Body128(ReadOnlySpan<ushort> x, ReadOnlySpan<ushort> y, int np)
    {
        ref short px = ref Unsafe.As<ushort, short>(ref MemoryMarshal.GetReference(x));
        ref short py = ref Unsafe.As<ushort, short>(ref MemoryMarshal.GetReference(y));
        Span<Vector128<float>> acc = stackalloc Vector128<float>[16];
        acc.Clear();
        Vector128<int> g = default;
        for (int i = 0; i < np; i += Step)
        {
            for (int k = 0; k < 8; k++)
            {
                nuint o = (nuint)(i + 8 * k);
                var (xl, xu) = Vector128.Widen(Vector128.LoadUnsafe(ref px, o));
                var (yl, yu) = Vector128.Widen(Vector128.LoadUnsafe(ref py, o));
                acc[2 * k] = Vector128.FusedMultiplyAdd(Fp16.WidenFinite(xl, ref g), Fp16.WidenFinite(yl, ref g), acc[2 * k]);
                acc[2 * k + 1] = Vector128.FusedMultiplyAdd(Fp16.WidenFinite(xu, ref g), Fp16.WidenFinite(yu, ref g), acc[2 * k + 1]);
            }
        }
        if (Fp16.HasSpecial(g)) return BodyScalar(x, y, np);
        return F32Kernel.ReduceAccumulators(MemoryMarshal.Cast<Vector128<float>, float>(acc));
    }
}
