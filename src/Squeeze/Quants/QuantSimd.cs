using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>
/// x86 building blocks shared by the dot-product kernels. They reproduce the lane layout of ggml-cpu's AVX2
/// kernels (each int32 lane sums four adjacent byte products; eight float lanes accumulate with FMA and are
/// reduced as ggml's <c>hsum_float_8</c> reduces them), so Squeeze's SIMD dot products round as ggml's do.
/// Callers check <see cref="UseAvx2"/> or <see cref="UseVnni"/> first.
/// </summary>
internal static class QuantSimd
{
    /// <summary>Whether the AVX2 integer paths may run at the current <see cref="Simd.Level"/>.</summary>
    public static bool UseAvx2
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Simd.Level >= SimdLevel.Avx2 && Avx2.IsSupported && Fma.IsSupported;
    }

    /// <summary>
    /// Whether the VNNI forms of the byte dot products may run: at the AVX-512 level, on CPUs with AVX-VNNI
    /// (the 256-bit <c>vpdpbusd</c> that ggml's AVX-512 VNNI build also uses).
    /// </summary>
    public static bool UseVnni
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Simd.Level >= SimdLevel.Avx512 && AvxVnni.IsSupported && Fma.IsSupported;
    }

    /// <summary>
    /// Whether the 512-bit integer paths may run (AVX-512 BW). They compute the same int32 lane totals as the AVX2
    /// paths, two 32-byte chunks at a time, and fold the halves before any float arithmetic, so their results are
    /// bit-identical to the AVX2 paths (and to ggml-cpu's AVX2 kernels).
    /// </summary>
    public static bool UseAvx512
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Simd.Level >= SimdLevel.Avx512 && Avx512BW.IsSupported && Fma.IsSupported;
    }

    /// <summary>Adds the upper 256 bits of <paramref name="v"/> to the lower (lane k + lane k+8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Fold(Vector512<int> v) => Avx2.Add(v.GetLower(), v.GetUpper());

    /// <summary>ggml's <c>hsum_float_8</c>: (lo + hi), then pairs, then the last two, in that order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalSum(Vector256<float> x)
    {
        Vector128<float> r = Sse.Add(x.GetUpper(), x.GetLower());
        r = Sse.Add(r, Sse.MoveHighToLow(r, r));
        r = Sse.AddScalar(r, Sse3.MoveHighAndDuplicate(r));
        return r.ToScalar();
    }

    /// <summary>Unsigned bytes times signed bytes, each group of four summed into an int32 lane (ggml's <c>mul_sum_us8_pairs</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MulSumUs8(Vector256<byte> ax, Vector256<sbyte> sy, bool vnni)
    {
        if (vnni) return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ax, sy);
        Vector256<short> dot = Avx2.MultiplyAddAdjacent(ax, sy);
        return Avx2.MultiplyAddAdjacent(dot, Vector256.Create((short)1));
    }

    /// <summary>Signed bytes times signed bytes, each group of four summed into an int32 lane (ggml's <c>mul_sum_i8_pairs</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MulSumI8(Vector256<sbyte> x, Vector256<sbyte> y, bool vnni)
    {
        Vector256<byte> ax = Avx2.Sign(x, x).AsByte();
        Vector256<sbyte> sy = Avx2.Sign(y, x);
        return MulSumUs8(ax, sy, vnni);
    }

    /// <summary>16 bytes of packed nibbles to 32 bytes: low nibbles first, then high nibbles (ggml's <c>bytes_from_nibbles_32</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> BytesFromNibbles(ref byte qs)
    {
        Vector128<byte> tmp = Vector128.LoadUnsafe(ref qs);
        Vector256<byte> bytes = Vector256.Create(tmp, Sse2.ShiftRightLogical(tmp.AsUInt16(), 4).AsByte());
        return Avx2.And(bytes, Vector256.Create((byte)0x0F));
    }

    /// <summary>32 bits to 32 bytes, 0xFF where the bit is set (ggml's <c>bytes_from_bits_32</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> BytesFromBits(uint bits)
    {
        Vector256<byte> shuffle = Vector256.Create(0x0000000000000000UL, 0x0101010101010101UL, 0x0202020202020202UL, 0x0303030303030303UL).AsByte();
        Vector256<byte> bytes = Avx2.Shuffle(Vector256.Create(bits).AsByte(), shuffle);
        bytes = Avx2.Or(bytes, Vector256.Create(0x7fbfdfeff7fbfdfeUL).AsByte());
        return Avx2.CompareEqual(bytes, Vector256<byte>.AllBitsSet);
    }

    /// <summary>
    /// The exact sum of 32 signed byte products, for any bytes (the sign trick of <see cref="MulSumI8"/> wraps
    /// when both bytes are -128; widening to int16 does not).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MulSumI8Exact(Vector256<sbyte> x, Vector256<sbyte> y)
    {
        Vector256<int> lo = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(x.GetLower()), Avx2.ConvertToVector256Int16(y.GetLower()));
        Vector256<int> hi = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(x.GetUpper()), Avx2.ConvertToVector256Int16(y.GetUpper()));
        return Avx2.Add(lo, hi);
    }

    // k-quant scale pickers, as ggml's get_scale_shuffle_q3k / get_scale_shuffle_k4 / get_scale_shuffle: byte
    // shuffles of a vector of int16 (or int8) scales that put the scale of each 16 (or 32) quants beside them.
    // Each row is a base pattern plus a multiple of 2 or 4 in every byte (ggml keeps them as tables).
    private static readonly Vector256<byte> Base16 = Vector256.Create(
        (byte)0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    private static readonly Vector256<byte> Base32 = Vector256.Create((ushort)0x0100).AsByte();
    private static readonly Vector512<byte> Base32Pair = Vector512.Create(Vector256.Create((ushort)0x0100), Vector256.Create((ushort)0x0504)).AsByte();
    private static readonly Vector128<byte> BaseBytes = Vector128.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);

    /// <summary>
    /// ggml's <c>get_scale_shuffle_q3k(i)</c>: from eight int16 scales in each 128-bit half, scale 2i for the low
    /// half and scale 2i+1 for the high half (16 quants each). Indices wrap at 16 bytes, as <c>pshufb</c> does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<sbyte> ScaleShuffle16(int i) => (Base16 + Vector256.Create((byte)(4 * (i & 3)))).AsSByte();

    /// <summary>ggml's <c>get_scale_shuffle_k4(i)</c>: int16 scale i across the whole vector (32 quants).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<sbyte> ScaleShuffle32(int i) => (Base32 + Vector256.Create((byte)(2 * i))).AsSByte();

    /// <summary>
    /// Two <see cref="ScaleShuffle32"/> rows side by side, <c>[k4(i), k4(i+2)]</c>, for the 512-bit Q4_K/Q5_K paths:
    /// the scales of chunk j in the low half and of chunk j+2 (the next 64 quants) in the high half.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<sbyte> ScaleShuffle32Pair(int i) => (Base32Pair + Vector512.Create((byte)(2 * i))).AsSByte();

    /// <summary>ggml's <c>get_scale_shuffle(i)</c>: int8 scale 2i for 8 bytes, then scale 2i+1 for 8 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<sbyte> ScaleShuffleBytes(int i) => (BaseBytes + Vector128.Create((byte)(2 * i))).AsSByte();

    /// <summary>Sums eight int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int HorizontalSum(Vector256<int> a) => Vector256.Sum(a);
}
