using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Quants;

public class GgmlTypesTests
{
    [Theory]
    [InlineData("q4_K", GgmlType.Q4_K)]
    [InlineData("Q4_K", GgmlType.Q4_K)]
    [InlineData("IQ3_S", GgmlType.IQ3_S)]
    [InlineData("bf16", GgmlType.BF16)]
    public void Parses_names_ignoring_case(string name, GgmlType expected)
    {
        Assert.True(GgmlTypes.TryParse(name, out var t));
        Assert.Equal(expected, t);
    }

    [Fact]
    public void Removed_ids_are_gaps()
    {
        foreach (uint id in new uint[] { 4, 5, 31, 32, 33, 36, 37, 38, 43, 1000 })
            Assert.False(GgmlTypes.IsDefined(id));
    }

    [Fact]
    public void RowSize_is_checked()
    {
        Assert.Equal(144, GgmlTypes.RowSize(GgmlType.Q4_K, 256));
        Assert.Throws<ArgumentException>(() => GgmlTypes.RowSize(GgmlType.Q4_K, 100));
        Assert.Throws<ArgumentOutOfRangeException>(() => GgmlTypes.RowSize(GgmlType.Q4_K, -256));
        Assert.Throws<OverflowException>(() => GgmlTypes.RowSize(GgmlType.F64, long.MaxValue));
        Assert.Equal(4.5, GgmlTypes.Get(GgmlType.Q4_0).BitsPerWeight);
    }
}
