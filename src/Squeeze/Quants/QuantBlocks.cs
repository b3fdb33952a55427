using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Squeeze.Numerics;

namespace Squeeze.Quants;

/// <summary>Little helpers every block format uses: half-precision fields and row-size checks.</summary>
internal static class QuantBlocks
{
    // Every fp16 value as a float, as ggml-cpu keeps it (ggml_table_f32_f16): a load instead of a conversion
    // in the dot products, which read two scales per block. Built from Fp16.ToFloat, so the values are the same.
    private static readonly float[] HalfTable = BuildHalfTable();

    private static float[] BuildHalfTable()
    {
        var t = new float[65536];
        for (int i = 0; i < t.Length; i++) t[i] = Fp16.ToFloat((ushort)i);
        return t;
    }

    /// <summary>Reads the fp16 field at <paramref name="offset"/> as a float (ggml's <c>GGML_FP16_TO_FP32</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(ReadOnlySpan<byte> block, int offset) =>
        Half(ref MemoryMarshal.GetReference(block), offset);

    /// <summary>Reads the fp16 field at <paramref name="offset"/> bytes from <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(ref byte p, int offset) =>
        Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(HalfTable), Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, offset)));

    /// <summary>Stores <paramref name="value"/> rounded to fp16 at <paramref name="offset"/> (<c>GGML_FP32_TO_FP16</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetHalf(Span<byte> block, int offset, float value) =>
        Unsafe.WriteUnaligned(ref block[offset], Fp16.FromFloat(value));

    /// <summary>
    /// Checks a row of <paramref name="n"/> elements against its source and destination and returns its block count.
    /// </summary>
    public static int Blocks(int n, int blockSize, int blockBytes, int floats, int bytes, string what)
    {
        if (n < 0 || n % blockSize != 0) throw new ArgumentException($"{what}: row length {n} is not a multiple of {blockSize}");
        int nb = n / blockSize;
        if (floats < n) throw new ArgumentException($"{what}: {floats} floats for a row of {n}");
        if (bytes < (long)nb * blockBytes) throw new ArgumentException($"{what}: {bytes} bytes for {nb} blocks of {blockBytes}");
        return nb;
    }

    /// <summary>The block count of a quantized row of <paramref name="bytes"/> bytes, which must be whole blocks.</summary>
    public static int BlocksIn(int bytes, int blockBytes, string what)
    {
        if (bytes % blockBytes != 0) throw new ArgumentException($"{what}: {bytes} bytes is not whole blocks of {blockBytes}");
        return bytes / blockBytes;
    }

    /// <summary>Checks the two rows of a dot product of <paramref name="n"/> elements and returns the block count of x.</summary>
    public static int DotBlocks(int n, int blockSize, int xBlockBytes, int xBytes, int yBlockBytes, int yBytes, string what)
    {
        if (n < 0 || n % blockSize != 0) throw new ArgumentException($"{what}: row length {n} is not a multiple of {blockSize}");
        int nb = n / blockSize;
        if (xBytes < (long)nb * xBlockBytes || yBytes < (long)nb * yBlockBytes)
            throw new ArgumentException($"{what}: rows of {xBytes} and {yBytes} bytes are too short for {n} elements");
        return nb;
    }
}
