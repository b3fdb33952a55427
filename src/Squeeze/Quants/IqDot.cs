using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>
/// What the IQ3/IQ4 dot products read of the activation blocks, and ggml-cpu's x86 float reduction.
/// Q8_K block: f32 d (4 bytes), int8 qs[256], int16 bsums[16] = 292 bytes.
/// Q8_0 block: fp16 d (2 bytes), int8 qs[32] = 34 bytes.
/// </summary>
internal static class IqDot
{
    public const int Q8KBytes = 292;
    public const int Q80Bytes = 34;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Q8KD(ReadOnlySpan<byte> block) => BinaryPrimitives.ReadSingleLittleEndian(block);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<sbyte> Q8KQs(ReadOnlySpan<byte> block) => MemoryMarshal.Cast<byte, sbyte>(block.Slice(4, 256));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Q80D(ReadOnlySpan<byte> block) => Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<sbyte> Q80Qs(ReadOnlySpan<byte> block) => MemoryMarshal.Cast<byte, sbyte>(block.Slice(2, 32));

    /// <summary>ggml-cpu's <c>hsum_float_8</c>: ((x4+x0)+(x6+x2)) + ((x5+x1)+(x7+x3)).</summary>
    public static float HorizontalSum8(ReadOnlySpan<float> x)
    {
        float r0 = x[4] + x[0], r1 = x[5] + x[1], r2 = x[6] + x[2], r3 = x[7] + x[3];
        return (r0 + r2) + (r1 + r3);
    }

    /// <summary><see cref="HorizontalSum8(ReadOnlySpan{float})"/> of a vector, in the same order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalSum8(Vector256<float> x)
    {
        var r = x.GetUpper() + x.GetLower();
        float r0 = r.GetElement(0), r1 = r.GetElement(1), r2 = r.GetElement(2), r3 = r.GetElement(3);
        return (r0 + r2) + (r1 + r3);
    }

    /// <summary>
    /// One product as ggml-cpu's <c>mul_add_epi8</c> forms it: |x| times y with x's sign (<c>vpsignb</c>, which wraps
    /// -(-128) to -128). Equal to x*y except for y = -128 with x &lt; 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SignedProduct(int x, int y) => x < 0 ? -x * (sbyte)-y : x * y;

    /// <summary>Rejects a row that is not whole blocks, a short destination or importance of the wrong length.</summary>
    public static void CheckQuantizeArgs(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance, int blockSize, int blockBytes)
    {
        if (src.Length % blockSize != 0) throw new ArgumentException($"row of {src.Length} values is not whole blocks of {blockSize}", nameof(src));
        if (dst.Length < (long)src.Length / blockSize * blockBytes) throw new ArgumentException($"dst has {dst.Length} bytes, needs {src.Length / blockSize * blockBytes}", nameof(dst));
        if (!importance.IsEmpty && importance.Length != src.Length) throw new ArgumentException($"importance has {importance.Length} weights, expected {src.Length}", nameof(importance));
    }

    /// <summary>Rejects a destination that is not whole blocks or a source shorter than its blocks.</summary>
    public static void CheckDequantizeArgs(ReadOnlySpan<byte> src, Span<float> dst, int blockSize, int blockBytes)
    {
        if (dst.Length % blockSize != 0) throw new ArgumentException($"row of {dst.Length} values is not whole blocks of {blockSize}", nameof(dst));
        if (src.Length < (long)dst.Length / blockSize * blockBytes) throw new ArgumentException($"src has {src.Length} bytes, needs {dst.Length / blockSize * blockBytes}", nameof(src));
    }
}
