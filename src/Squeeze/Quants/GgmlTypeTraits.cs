namespace Squeeze.Quants;

/// <summary>
/// One row of the ggml type table: how a type lays out its elements in blocks.
/// Kernels (quantize, dequantize, dot product) are attached by each format's own file.
/// </summary>
/// <param name="Type">The type id.</param>
/// <param name="Name">The name exactly as ggml spells it (<c>q4_K</c>, <c>iq3_s</c>).</param>
/// <param name="BlockSize">Elements per block.</param>
/// <param name="TypeSize">Bytes per block.</param>
/// <param name="IsQuantized">Whether ggml counts the type as quantized (blocks of more than one element, or the 1-element formats it quantizes).</param>
public sealed record GgmlTypeTraits(GgmlType Type, string Name, int BlockSize, int TypeSize, bool IsQuantized)
{
    /// <summary>Bits per weight: <c>8 * TypeSize / BlockSize</c>.</summary>
    public double BitsPerWeight => 8.0 * TypeSize / BlockSize;

    /// <summary>
    /// Bytes of a row of <paramref name="n"/> elements. Throws when <paramref name="n"/> is negative, not a
    /// multiple of the block size, or the size overflows.
    /// </summary>
    public long RowSize(long n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "row length is negative");
        if (n % BlockSize != 0)
            throw new ArgumentException($"row length {n} is not a multiple of {Name}'s block size {BlockSize}", nameof(n));
        return checked(n / BlockSize * TypeSize);
    }

    public override string ToString() => Name;
}
