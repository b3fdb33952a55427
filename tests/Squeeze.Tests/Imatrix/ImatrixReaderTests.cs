using System.Buffers.Binary;
using Squeeze.Imatrix;
using Squeeze.Gguf;
using Squeeze.Quants;
using Xunit;
using static Squeeze.Tests.ImatrixFiles;

namespace Squeeze.Tests.Imatrix;

public sealed class ImatrixReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-imatrix-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Save(byte[] bytes, string name = "m.dat")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Sample(bool trailer = true) => LegacyBytes(
        [new("blk.0.attn_q.weight", 10, [20f, 30f, 0.5f, 7f]), new("blk.0.ffn_down.weight", 0, [2f, 4f])],
        trailer ? 10 : null, trailer ? "calibration.txt" : null);

    [Fact]
    public void Reads_legacy_files_and_divides_by_ncall()
    {
        var file = ImatrixFile.Read(Save(Sample()));
        Assert.Equal(ImatrixFormat.Legacy, file.Format);
        Assert.Equal(2, file.Entries.Count);
        Assert.Equal(10, file.ChunkCount);
        Assert.Equal(["calibration.txt"], file.Datasets);

        var m = ImportanceMatrix.From(file, "m.dat");
        Assert.Equal([2f, 3f, 0.05f, 0.7f], m.Find("blk.0.attn_q.weight")!);
        Assert.Equal([2f, 4f], m.Find("blk.0.ffn_down.weight")!); // ncall 0: the data as stored
        Assert.Equal(2, m.EntryCount);
        Assert.Null(m.Find("output.weight"));
    }

    [Fact]
    public void The_legacy_trailer_is_optional()
    {
        var file = ImatrixFile.Read(Save(Sample(trailer: false)));
        Assert.Equal(0, file.ChunkCount);
        Assert.Empty(file.Datasets);
        // A trailer with only the chunk count is accepted too.
        var withCount = Sample(trailer: false).Concat(BitConverter.GetBytes(5)).ToArray();
        Assert.Equal(5, ImatrixFile.ReadLegacy(withCount).ChunkCount);
    }

    public static TheoryData<string, Func<byte[], byte[]>, string> LegacyCorruptions() => new()
    {
        { "no entries", b => BitConverter.GetBytes(0), "n_entries" },
        { "more entries than bytes", b => Patch(b, 0, 1000), "n_entries" },
        { "negative name length", b => Patch(b, 4, -5), "entry[0].name.length" },
        { "name longer than the file", b => Patch(b, 4, 100000), "entry[0].name.length" },
        { "zero values", b => Patch(b, 4 + 4 + 19 + 4, 0), "nval" },
        { "more values than bytes", b => Patch(b, 4 + 4 + 19 + 4, 1 << 20), "nval" },
        { "negative ncall", b => Patch(b, 4 + 4 + 19, -1), "ncall" },
        { "truncated data", b => b[..40], "nval" },
        { "truncated trailer", b => b[..^3], "dataset" },
        { "bytes after the trailer", b => [.. b, 1, 2], "end of file" },
        { "invalid UTF-8 name", b => { var c = b.ToArray(); c[8] = 0xFF; return c; }, "entry[0].name" },
        { "duplicate names", b => LegacyBytes([new("a.weight", 1, [1f]), new("a.weight", 1, [2f])]), "duplicate" },
    };

    [Theory]
    [MemberData(nameof(LegacyCorruptions))]
    public void Rejects_corrupt_legacy_files(string what, Func<byte[], byte[]> corrupt, string field)
    {
        var bytes = corrupt(Sample());
        var e = Assert.Throws<ImatrixFormatException>(() => ImatrixFile.Read(Save(bytes)));
        Assert.True(e.Field.Contains(field) || e.Found.Contains(field), $"{what}: {e.Message}");
        Assert.InRange(e.Offset, 0, bytes.Length);
    }

    private static byte[] Patch(byte[] b, int offset, int value)
    {
        var c = b.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(c.AsSpan(offset), value);
        return c;
    }

    private string GgufSample(bool metadata = true, float count1 = 0f)
    {
        var path = Path.Combine(_dir, "m.gguf");
        WriteGguf(path,
        [
            new("blk.0.attn_q.weight", [8f, 16f, 4f], [4f]),
            // Two experts of 2 columns: the second was never routed to (count 0), so its weights are 1.
            new("blk.0.ffn_up_exps.weight", [3f, 6f, 9f, 9f], [3f, count1]),
        ], ["calib.txt", "more.txt"], 12, 512, metadata);
        return path;
    }

    [Fact]
    public void Reads_gguf_files_and_divides_by_counts()
    {
        var file = ImatrixFile.Read(GgufSample());
        Assert.Equal(ImatrixFormat.Gguf, file.Format);
        Assert.True(file.HasMetadata);
        Assert.Equal(12, file.ChunkCount);
        Assert.Equal(512, file.ChunkSize);
        Assert.Equal(["calib.txt", "more.txt"], file.Datasets);
        var m = ImportanceMatrix.From(file, "m.gguf");
        Assert.Equal([2f, 4f, 1f], m.Find("blk.0.attn_q.weight")!);
        Assert.Equal([1f, 2f, 1f, 1f], m.Find("blk.0.ffn_up_exps.weight")!);
    }

    [Fact]
    public void Gguf_counts_are_rounded_as_lround()
    {
        // 2.5 rounds away from zero to 3; 0.4 rounds to 0, which means "never exercised": weights 1.
        var file = ImatrixFile.Read(GgufSample(count1: 2.5f));
        Assert.Equal([3L, 3L], file.Entries["blk.0.ffn_up_exps.weight"].Counts);
        var m = ImportanceMatrix.From(ImatrixFile.Read(GgufSample(count1: 0.4f)), "x");
        Assert.Equal([1f, 2f, 1f, 1f], m.Find("blk.0.ffn_up_exps.weight")!);
    }

    [Fact]
    public void Refuses_gguf_imatrix_without_metadata_as_llama_quantize()
    {
        var file = ImatrixFile.Read(GgufSample(metadata: false));
        Assert.False(file.HasMetadata);
        var e = Assert.Throws<ImatrixFormatException>(() => ImportanceMatrix.From(file, "x"));
        Assert.Contains(GgufKeys.Imatrix.ChunkCount, e.Expected);
    }

    [Fact]
    public void Rejects_sums_without_counts()
    {
        var path = Path.Combine(_dir, "bad.gguf");
        var w = new GgufWriter();
        w.Set(GgufKeys.Imatrix.Datasets, GgufValue.Strings(["a"]));
        w.AddTensor("x.weight.in_sum2", GgmlType.F32, [2, 1], new byte[8]);
        w.WriteTo(path);
        var e = Assert.Throws<ImatrixFormatException>(() => ImatrixFile.Read(path));
        Assert.Contains("x.weight.counts", e.Expected);
    }

    [Fact]
    public void Rejects_counts_that_do_not_divide_the_sums()
    {
        var path = Path.Combine(_dir, "bad.gguf");
        var w = new GgufWriter();
        w.AddTensor("x.weight.in_sum2", GgmlType.F32, [3, 1], new byte[12]);
        w.AddTensor("x.weight.counts", GgmlType.F32, [1, 2], new byte[8]);
        w.WriteTo(path);
        var e = Assert.Throws<ImatrixFormatException>(() => ImatrixFile.Read(path));
        Assert.Contains("x.weight.counts", e.Field);
    }

    [Fact]
    public void Rejects_non_f32_entries_and_bad_counts()
    {
        var path = Path.Combine(_dir, "bad.gguf");
        var w = new GgufWriter();
        w.AddTensor("x.weight.in_sum2", GgmlType.F16, [2, 1], new byte[4]);
        w.AddTensor("x.weight.counts", GgmlType.F32, [1, 1], BitConverter.GetBytes(1f));
        w.WriteTo(path);
        var e = Assert.Throws<ImatrixFormatException>(() => ImatrixFile.Read(path));
        Assert.Equal("f32", e.Expected);

        WriteGguf(path, [new("x.weight", [1f, 2f], [float.NaN])], ["a"], 1, 1);
        e = Assert.Throws<ImatrixFormatException>(() => ImatrixFile.Read(path));
        Assert.Contains("count", e.Expected);
        WriteGguf(path, [new("x.weight", [1f, 2f], [-3f])], ["a"], 1, 1);
        Assert.Throws<ImatrixFormatException>(() => ImatrixFile.Read(path));
    }

    [Fact]
    public void Rejects_metadata_of_the_wrong_type()
    {
        var path = Path.Combine(_dir, "bad.gguf");
        var w = new GgufWriter();
        w.Set(GgufKeys.Imatrix.ChunkCount, GgufValue.Int32(3));
        w.AddTensor("x.weight.in_sum2", GgmlType.F32, [1, 1], BitConverter.GetBytes(1f));
        w.AddTensor("x.weight.counts", GgmlType.F32, [1, 1], BitConverter.GetBytes(1f));
        w.WriteTo(path);
        var e = Assert.Throws<ImatrixFormatException>(() => ImatrixFile.Read(path));
        Assert.Equal(GgufKeys.Imatrix.ChunkCount, e.Field);
    }

    [Fact]
    public void Reports_a_broken_gguf_container_as_an_imatrix_error()
    {
        var path = Save("GGUF"u8.ToArray().Concat(new byte[] { 3, 0, 0, 0, 1 }).ToArray(), "trunc.gguf");
        var e = Assert.Throws<ImatrixFormatException>(() => ImatrixFile.Read(path));
        Assert.IsType<GgufFormatException>(e.InnerException);
    }

    [Fact]
    public void Filters_entries_as_llama_quantize()
    {
        var m = ImportanceMatrix.From(ImatrixFile.Read(GgufSample()), "x");
        Assert.Equal(["blk.0.ffn_up_exps.weight"], m.Filtered(["ffn_"], []).Names);
        Assert.Equal(["blk.0.attn_q.weight"], m.Filtered([], ["ffn_"]).Names);
        Assert.Equal(2, m.Filtered(["attn", "exps"], []).EntryCount);
        Assert.Throws<InvalidInputException>(() => m.Filtered(["a"], ["b"]));
    }

    [Fact]
    public void Refuses_non_finite_weights()
    {
        var bytes = LegacyBytes([new("a.weight", 1, [1f, float.PositiveInfinity])]);
        var file = ImatrixFile.ReadLegacy(bytes);
        var e = Assert.Throws<ImatrixFormatException>(() => ImportanceMatrix.From(file, "x"));
        Assert.Contains("a.weight", e.Field);
    }

    [Fact]
    public void Checks_that_an_entry_fits_its_tensor()
    {
        var m = ImportanceMatrix.From(ImatrixFile.Read(GgufSample()), "x");
        Assert.True(m.Fits(new GgufTensorInfo("blk.0.attn_q.weight", GgmlType.F32, [3, 5], 0), out _, out _));
        Assert.False(m.Fits(new GgufTensorInfo("blk.0.attn_q.weight", GgmlType.F32, [6, 5], 0), out int size, out long expected));
        Assert.Equal((3, 6L), (size, expected));
        Assert.True(m.Fits(new GgufTensorInfo("blk.0.ffn_up_exps.weight", GgmlType.F32, [2, 7, 2], 0), out _, out _));
        Assert.False(m.Fits(new GgufTensorInfo("blk.0.ffn_up_exps.weight", GgmlType.F32, [2, 7], 0), out _, out _));
        Assert.True(m.Fits(new GgufTensorInfo("not.there.weight", GgmlType.F32, [4, 7], 0), out _, out _));
    }
}
