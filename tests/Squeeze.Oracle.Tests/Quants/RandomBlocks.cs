using System.Buffers.Binary;
using Squeeze.Quants;

namespace Squeeze.Oracle.Tests.Quants;

/// <summary>
/// Random block bytes for dequantization tests, with every scale field made finite (a random fp16 can be
/// Inf or NaN, which would make the comparison meaningless). One entry per format: where its scales live.
/// </summary>
public static class RandomBlocks
{
    /// <summary>Byte offsets of fp16 scale fields inside one block, per type.</summary>
    private static readonly Dictionary<GgmlType, int[]> Fp16Fields = new()
    {
        // Filled by each format: e.g. [GgmlType.Q4_0] = [0] (d at offset 0).
        [GgmlType.IQ2_XXS] = [0],
        [GgmlType.IQ2_XS] = [0],
        [GgmlType.IQ2_S] = [0],
        [GgmlType.IQ1_S] = [0],
    };

    /// <summary>Types whose scales need more than fp16 fields made finite (E8M0, E4M3, packed scales, f32).</summary>
    private static readonly Dictionary<GgmlType, Action<Span<byte>>> Custom = new()
    {
    };

    public static byte[] Make(GgmlType type, int nblocks, int seed)
    {
        var traits = GgmlTypes.Get(type);
        var bytes = new byte[nblocks * traits.TypeSize];
        var rng = new Random(seed);
        rng.NextBytes(bytes);
        for (int b = 0; b < nblocks; b++)
        {
            var block = bytes.AsSpan(b * traits.TypeSize, traits.TypeSize);
            if (Fp16Fields.TryGetValue(type, out var offsets))
                foreach (int o in offsets) MakeFiniteFp16(block.Slice(o, 2));
            if (Custom.TryGetValue(type, out var fix)) fix(block);
        }
        return bytes;
    }

    /// <summary>Clears the top exponent bit when the fp16 is Inf/NaN, keeping the rest random.</summary>
    public static void MakeFiniteFp16(Span<byte> field)
    {
        ushort h = BinaryPrimitives.ReadUInt16LittleEndian(field);
        if ((h & 0x7C00) == 0x7C00) h &= 0xBFFF;
        BinaryPrimitives.WriteUInt16LittleEndian(field, h);
    }
}
