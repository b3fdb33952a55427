using Squeeze.Oracle;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Quants;

public unsafe class TypeTableTests
{
    public TypeTableTests() => OracleLibrary.EnsureLoaded();

    public static TheoryData<int> AllIds() => new(Enumerable.Range(0, GgmlTypes.Count));

    [Theory]
    [MemberData(nameof(AllIds))]
    public void Row_equals_ggml_type_traits(int id)
    {
        var native = Native.ggml_get_type_traits(id);
        bool exists = native->BlockSize > 0;
        Assert.Equal(exists, GgmlTypes.IsDefined((uint)id));
        if (!exists) return;
        var row = GgmlTypes.Get((GgmlType)id);
        Assert.Equal(Native.Utf8(native->TypeName), row.Name);
        Assert.Equal(native->BlockSize, row.BlockSize);
        Assert.Equal((long)native->TypeSize, row.TypeSize);
        Assert.Equal(Native.ggml_blck_size(id), row.BlockSize);
        Assert.Equal((long)Native.ggml_type_size(id), row.TypeSize);
        Assert.Equal(Native.ggml_is_quantized(id), row.IsQuantized);
        foreach (long n in new long[] { 0, row.BlockSize, 4096 * row.BlockSize })
            Assert.Equal((long)Native.ggml_row_size(id, n), row.RowSize(n));
    }

    [Fact]
    public void Type_count_matches_ggml()
    {
        // ggml_type_name of the first id past the table is out of range in ggml; compare with the enum instead.
        Assert.Equal(43, GgmlTypes.Count);
        Assert.Equal(GgmlTypes.Count - 1, (int)Enum.GetValues<GgmlType>().Max());
    }
}
