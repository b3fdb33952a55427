using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Quants;

/// <summary>Bitwise comparison of quantized rows that reports the first differing block beside the reference.</summary>
public static class BlockAssert
{
    public static void Equal(GgmlType type, ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, string context)
    {
        Assert.Equal(expected.Length, actual.Length);
        int i = expected.SequenceEqual(actual) ? -1 : FirstDifference(expected, actual);
        if (i < 0) return;
        var traits = GgmlTypes.Get(type);
        int block = i / traits.TypeSize;
        int start = block * traits.TypeSize;
        Assert.Fail($"{traits.Name} {context}: first difference at byte {i} (block {block}, byte {i - start} of the block)\n" +
            $"  ggml:    {Convert.ToHexString(expected.Slice(start, traits.TypeSize))}\n" +
            $"  squeeze: {Convert.ToHexString(actual.Slice(start, traits.TypeSize))}");
    }

    /// <summary>Floats equal bit for bit (NaNs with the same payload are equal).</summary>
    public static void BitEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string context)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToUInt32Bits(expected[i]) != BitConverter.SingleToUInt32Bits(actual[i]))
                Assert.Fail($"{context}: element {i}: ggml {expected[i]:R} (0x{BitConverter.SingleToUInt32Bits(expected[i]):X8}), " +
                    $"squeeze {actual[i]:R} (0x{BitConverter.SingleToUInt32Bits(actual[i]):X8})");
        }
    }

    private static int FirstDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return i;
        return -1;
    }
}
