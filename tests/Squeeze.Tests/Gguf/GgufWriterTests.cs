using Squeeze.Gguf;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Gguf;

public sealed class GgufWriterTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("squeeze-gguf-writer-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Theory]
    [InlineData(new long[] { 4, 0 })]
    [InlineData(new long[] { 4, 2, 0 })]
    [InlineData(new long[] { 4, 1, 1, 0 })]
    public void Refuses_zero_rows_that_would_crash_llama_cpp(long[] shape)
    {
        var w = new GgufWriter();
        var e = Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgmlType.F32, shape, ReadOnlyMemory<byte>.Empty));
        Assert.Contains("llama.cpp cannot load", e.Message);
        Assert.Empty(w.Tensors);
        w.AddTensor("t", GgmlType.F32, [0, 3], ReadOnlyMemory<byte>.Empty); // an empty row length is fine
    }

    private string[] FilesInDir() => _dir.EnumerateFiles("*", SearchOption.AllDirectories).Select(f => f.Name).Order().ToArray();

    private static GgufWriter TwoTensors(TensorDataSource second)
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Architecture, GgufValue.String("llama"));
        w.AddTensor("a", GgmlType.F32, [4], new byte[16]);
        w.AddTensor("b", GgmlType.F32, [4], second);
        return w;
    }

    // ---- atomic writes ----

    [Fact]
    public void A_failing_data_source_leaves_no_file_and_no_temporary()
    {
        var target = Path.Combine(_dir.FullName, "model.gguf");
        var w = TwoTensors(s =>
        {
            s.Write(new byte[8]);
            throw new IOException("source failed halfway");
        });
        var ex = Assert.Throws<IOException>(() => w.WriteTo(target));
        Assert.Equal("source failed halfway", ex.Message);
        Assert.Empty(FilesInDir());
    }

    [Fact]
    public void A_failing_data_source_leaves_an_existing_target_untouched()
    {
        var target = Path.Combine(_dir.FullName, "model.gguf");
        var old = TwoTensors(s => s.Write(new byte[16])).ToBytes();
        File.WriteAllBytes(target, old);
        var w = TwoTensors(_ => throw new InvalidDataException("boom"));
        Assert.Throws<InvalidDataException>(() => w.WriteTo(target));
        Assert.Equal(old, File.ReadAllBytes(target));
        Assert.Equal(["model.gguf"], FilesInDir());
    }

    [Fact]
    public void A_successful_write_replaces_the_target_and_leaves_nothing_else()
    {
        var target = Path.Combine(_dir.FullName, "model.gguf");
        File.WriteAllBytes(target, [1, 2, 3]);
        var w = TwoTensors(s => s.Write(Enumerable.Range(0, 16).Select(i => (byte)i).ToArray()));
        long n = w.WriteTo(target);
        Assert.Equal(new FileInfo(target).Length, n);
        Assert.Equal(["model.gguf"], FilesInDir());
        using var f = GgufFile.Open(target);
        Assert.Equal(Enumerable.Range(0, 16).Select(i => (byte)i).ToArray(), f.GetTensorBytes(f.FindTensor("b")!).ToArray());
    }

    [Fact]
    public void Writing_creates_the_target_folder()
    {
        var target = Path.Combine(_dir.FullName, "sub", "dir", "model.gguf");
        TwoTensors(s => s.Write(new byte[16])).WriteTo(target);
        Assert.True(File.Exists(target));
    }

    // ---- data sources that write the wrong amount ----

    [Theory]
    [InlineData(0)]
    [InlineData(15)]
    [InlineData(17)]
    [InlineData(32)]
    public void A_source_writing_the_wrong_byte_count_is_an_error(int count)
    {
        var target = Path.Combine(_dir.FullName, "model.gguf");
        var w = TwoTensors(s => s.Write(new byte[count]));
        var ex = Assert.Throws<InvalidOperationException>(() => w.WriteTo(target));
        Assert.Contains("'b'", ex.Message);
        Assert.Contains($"wrote {count} bytes", ex.Message);
        Assert.Empty(FilesInDir());
        Assert.Throws<InvalidOperationException>(() => w.WriteTo(new MemoryStream()));
    }

    [Fact]
    public void In_memory_data_of_the_wrong_size_is_an_error()
    {
        var w = new GgufWriter();
        w.AddTensor("a", GgmlType.Q8_0, [32], new byte[33]);
        Assert.Throws<InvalidOperationException>(() => w.WriteTo(new MemoryStream()));
    }

    // ---- metadata ----

    [Fact]
    public void Set_keeps_the_order_of_first_insertion()
    {
        var w = new GgufWriter();
        w.Set("c", GgufValue.UInt32(1)).Set("a", GgufValue.UInt32(2)).Set("b", GgufValue.UInt32(3));
        w.Set("a", GgufValue.String("replaced"));
        Assert.Equal(["c", "a", "b"], w.Metadata.Select(kv => kv.Key));
        Assert.Equal(GgufValue.String("replaced"), w.Find("a"));

        Assert.True(w.Remove("c"));
        Assert.False(w.Remove("c"));
        w.Set("c", GgufValue.Bool(false));
        Assert.Equal(["a", "b", "c"], w.Metadata.Select(kv => kv.Key));

        using var f = GgufFile.Read(w.ToBytes());
        Assert.Equal(["a", "b", "c"], f.Metadata.Select(kv => kv.Key));
        Assert.Equal("replaced", f["a"].AsString());
    }

    [Fact]
    public void CopyOf_keeps_metadata_order_and_Set_on_a_copy_keeps_position()
    {
        using var f = GgufFile.Read(GgufSamples.Valid().ToArray());
        var w = GgufWriter.CopyOf(f);
        w.Set("test.flag", GgufValue.Bool(false));
        w.Set("new.key", GgufValue.Int64(-1));
        Assert.Equal(f.Metadata.Select(kv => kv.Key).Append("new.key"), w.Metadata.Select(kv => kv.Key));
        using var g = GgufFile.Read(w.ToBytes());
        Assert.False(g["test.flag"].AsBool());
        Assert.Equal(f.Tensors.Select(t => t.Offset), g.Tensors.Select(t => t.Offset));
    }

    [Fact]
    public void Empty_key_is_rejected() =>
        Assert.Throws<ArgumentException>(() => new GgufWriter().Set("", GgufValue.UInt8(0)));

    [Fact]
    public void NUL_in_keys_and_tensor_names_is_rejected()
    {
        var w = new GgufWriter();
        Assert.Throws<ArgumentException>(() => w.Set("a\0b", GgufValue.UInt8(0)));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t\0", GgmlType.F32, [1], new byte[4]));
        w.Set("s", GgufValue.String("values may hold \0"));
    }

    // ---- tensors ----

    [Fact]
    public void Offsets_follow_the_alignment()
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Alignment, GgufValue.UInt32(64));
        Assert.Equal(0, w.AddTensor("a", GgmlType.F32, [3], new byte[12]).Offset);
        Assert.Equal(64, w.AddTensor("b", GgmlType.F32, [16], new byte[64]).Offset);
        Assert.Equal(128, w.AddTensor("c", GgmlType.F32, [0], ReadOnlyMemory<byte>.Empty).Offset);
        Assert.Equal(128, w.AddTensor("d", GgmlType.F32, [1], new byte[4]).Offset);
        Assert.Equal([0L, 64, 128, 128], w.Tensors.Select(t => t.Offset));
    }

    [Fact]
    public void Alignment_cannot_change_after_tensors_are_added()
    {
        var w = new GgufWriter();
        w.AddTensor("a", GgmlType.F32, [3], new byte[12]);
        Assert.Throws<InvalidOperationException>(() => w.Set(GgufKeys.General.Alignment, GgufValue.UInt32(64)));
    }

    [Theory]
    [InlineData(GgufValueType.UInt32, 0u)]
    [InlineData(GgufValueType.UInt32, 48u)]
    [InlineData(GgufValueType.UInt32, 0x80000000u)]
    [InlineData(GgufValueType.UInt64, 32u)]
    public void An_alignment_the_reader_would_reject_is_not_written(GgufValueType type, uint value)
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Alignment, type == GgufValueType.UInt32 ? GgufValue.UInt32(value) : GgufValue.UInt64(value));
        Assert.Throws<InvalidOperationException>(() => w.WriteTo(new MemoryStream()));
    }

    [Fact]
    public void Tensor_names_are_checked()
    {
        var w = new GgufWriter();
        w.AddTensor(new string('x', 63), GgmlType.F32, [1], new byte[4]);
        Assert.Throws<ArgumentException>(() => w.AddTensor(new string('y', 64), GgmlType.F32, [1], new byte[4]));
        Assert.Throws<ArgumentException>(() => w.AddTensor(new string('é', 32), GgmlType.F32, [1], new byte[4]));
        Assert.Throws<ArgumentException>(() => w.AddTensor(new string('x', 63), GgmlType.F32, [1], new byte[4]));
    }

    [Fact]
    public void Shapes_are_checked()
    {
        var w = new GgufWriter();
        Assert.ThrowsAny<ArgumentException>(() => w.AddTensor("a", GgmlType.F32, [], new byte[4]));
        Assert.ThrowsAny<ArgumentException>(() => w.AddTensor("b", GgmlType.F32, [1, 1, 1, 1, 1], new byte[4]));
        Assert.ThrowsAny<ArgumentException>(() => w.AddTensor("c", GgmlType.F32, [-1], new byte[4]));
        Assert.ThrowsAny<ArgumentException>(() => w.AddTensor("d", GgmlType.Q4_K, [100], new byte[4]));
        Assert.Empty(w.Tensors);
        // A rejected tensor leaves nothing behind: its name is still free.
        Assert.Equal(0, w.AddTensor("a", GgmlType.F32, [1], new byte[4]).Offset);
    }

    [Fact]
    public void Unpaired_surrogates_are_not_written()
    {
        var w = new GgufWriter();
        w.Set("k", GgufValue.String("a\uD800b"));
        Assert.ThrowsAny<ArgumentException>(() => w.WriteTo(new MemoryStream()));
    }
}
