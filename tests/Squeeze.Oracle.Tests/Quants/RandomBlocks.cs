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
        [GgmlType.Q4_0] = [0],
        [GgmlType.Q4_1] = [0, 2],
        [GgmlType.Q5_0] = [0],
        [GgmlType.Q5_1] = [0, 2],
        [GgmlType.Q8_0] = [0],
        [GgmlType.Q8_1] = [0, 2],
        [GgmlType.Q2_K] = [80, 82],
        [GgmlType.Q3_K] = [108],
        [GgmlType.Q4_K] = [0, 2],
        [GgmlType.Q5_K] = [0, 2],
        [GgmlType.Q6_K] = [208],
        [GgmlType.F16] = [0],
        [GgmlType.Q1_0] = [0],
        [GgmlType.Q2_0] = [0],
        [GgmlType.TQ1_0] = [52],
        [GgmlType.TQ2_0] = [64],
        [GgmlType.IQ3_XXS] = [0],
        [GgmlType.IQ3_S] = [0],
        [GgmlType.IQ4_NL] = [0],
        [GgmlType.IQ4_XS] = [0],
        [GgmlType.IQ2_XXS] = [0],
        [GgmlType.IQ2_XS] = [0],
        [GgmlType.IQ2_S] = [0],
        [GgmlType.IQ1_S] = [0],
    };

    /// <summary>Types whose scales need more than fp16 fields made finite (E8M0, E4M3, packed scales, f32).</summary>
    private static readonly Dictionary<GgmlType, Action<Span<byte>>> Custom = new()
    {
        [GgmlType.Q8_K] = b => MakeFiniteFp32(b[..4]),
        // Plain floats: keep sign and mantissa, move the exponent to 2^-16..2^15 so dot products stay finite.
        [GgmlType.F32] = b =>
        {
            uint u = BinaryPrimitives.ReadUInt32LittleEndian(b);
            u = (u & 0x807FFFFFu) | (111u + ((u >> 23) & 31u)) << 23;
            BinaryPrimitives.WriteUInt32LittleEndian(b, u);
        },
        [GgmlType.BF16] = b =>
        {
            ushort h = BinaryPrimitives.ReadUInt16LittleEndian(b);
            h = (ushort)((h & 0x807F) | (111 + ((h >> 7) & 31)) << 7);
            BinaryPrimitives.WriteUInt16LittleEndian(b, h);
        },
        // E8M0 exponent 2^-16..2^15 (every byte decodes finite, but 2^127 blocks overflow any dot product;
        // MicroFloatTests decode all 256 codes against ggml instead).
        [GgmlType.MXFP4] = b => b[0] = (byte)(111 + (b[0] & 31)),
        // NVFP4's UE4M3 scales are all finite and at most 240: no fix needed.
        [GgmlType.IQ1_M] = FixIq1MScale,
    };

    /// <summary>
    /// IQ1_M has no d field: its fp16 scale is the top nibble of each of the 4 uint16 scale words at offset 48
    /// (word 0 holds bits 0..3, ..., word 3 bits 12..15). Gather it, make it finite, scatter it back.
    /// </summary>
    private static void FixIq1MScale(Span<byte> block)
    {
        var sc = block.Slice(48, 8);
        ushort d = 0;
        for (int j = 0; j < 4; j++) d |= (ushort)((BinaryPrimitives.ReadUInt16LittleEndian(sc.Slice(2 * j)) >> 12) << (4 * j));
        Span<byte> field = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(field, d);
        MakeFiniteFp16(field);
        d = BinaryPrimitives.ReadUInt16LittleEndian(field);
        for (int j = 0; j < 4; j++)
        {
            ushort w = BinaryPrimitives.ReadUInt16LittleEndian(sc.Slice(2 * j));
            BinaryPrimitives.WriteUInt16LittleEndian(sc.Slice(2 * j), (ushort)((w & 0x0FFF) | (((d >> (4 * j)) & 0xF) << 12)));
        }
    }

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

    /// <summary>Clears the top exponent bit when the f32 is Inf/NaN, keeping the rest random.</summary>
    public static void MakeFiniteFp32(Span<byte> field)
    {
        uint f = BinaryPrimitives.ReadUInt32LittleEndian(field);
        if ((f & 0x7F800000) == 0x7F800000) f &= 0xBFFFFFFF;
        BinaryPrimitives.WriteUInt32LittleEndian(field, f);
    }

    /// <summary>Clears the top exponent bit when the fp16 is Inf/NaN, keeping the rest random.</summary>
    public static void MakeFiniteFp16(Span<byte> field)
    {
        ushort h = BinaryPrimitives.ReadUInt16LittleEndian(field);
        if ((h & 0x7C00) == 0x7C00) h &= 0xBFFF;
        BinaryPrimitives.WriteUInt16LittleEndian(field, h);
    }
}
