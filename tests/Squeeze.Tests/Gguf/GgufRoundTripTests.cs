using Squeeze.Gguf;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Gguf;

/// <summary>Read, then write with <see cref="GgufWriter.CopyOf"/>: the bytes must not change.</summary>
public class GgufRoundTripTests
{
    /// <summary>Every GGUF in the shared data, relative to its folder (one placeholder that skips when the data is absent).</summary>
    public static TheoryData<string> SharedFiles()
    {
        var data = new TheoryData<string>();
        var root = TestData.Folder;
        if (root is null) data.Add("models/stories260K.gguf");
        else
            foreach (var f in Directory.EnumerateFiles(root, "*.gguf", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                data.Add(Path.GetRelativePath(root, f));
        return data;
    }

    internal static void AssertSameBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, string what)
    {
        int common = Math.Min(expected.Length, actual.Length);
        int first = expected[..common].CommonPrefixLength(actual[..common]);
        if (first == common && expected.Length == actual.Length) return;
        Assert.Fail($"{what}: {actual.Length} bytes written, {expected.Length} expected; first difference at offset {first}" +
            (first < common ? $" (0x{actual[first]:X2} written, 0x{expected[first]:X2} expected)" : ""));
    }

    [Theory]
    [MemberData(nameof(SharedFiles))]
    public void Shared_file_round_trips_byte_for_byte(string relative)
    {
        var path = TestData.Require(relative);
        using var file = GgufFile.Open(path);
        var written = GgufWriter.CopyOf(file).ToBytes();
        AssertSameBytes(File.ReadAllBytes(path), written, relative);
    }

    [Fact]
    public void Shared_data_has_models_and_vocab_files()
    {
        var all = TestData.AllGgufFiles();
        Assert.Contains(all, p => p.EndsWith("stories260K.gguf", StringComparison.Ordinal));
        Assert.Contains(all, p => p.Contains("ggml-vocab-", StringComparison.Ordinal));
        Assert.Equal(all.Count, SharedFiles().Count);
    }

    [Fact]
    public void Model_round_trips_through_a_file_on_disk()
    {
        var path = TestData.StoriesModel;
        var dir = Directory.CreateTempSubdirectory("squeeze-gguf-");
        try
        {
            var target = Path.Combine(dir.FullName, "copy.gguf");
            using (var file = GgufFile.Open(path))
            {
                long n = GgufWriter.CopyOf(file).WriteTo(target);
                Assert.Equal(file.Length, n);
            }
            AssertSameBytes(File.ReadAllBytes(path), File.ReadAllBytes(target), "stories260K copy");
            Assert.Equal(["copy.gguf"], dir.EnumerateFiles().Select(f => f.Name));
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void A_file_behind_a_symbolic_link_opens_at_the_target_size()
    {
        var dir = Directory.CreateTempSubdirectory("squeeze-gguf-link-");
        try
        {
            // Hugging Face's cache holds models as links to blobs; the link's own length is that of its target's path.
            var link = Path.Combine(dir.FullName, "model.gguf");
            File.CreateSymbolicLink(link, TestData.StoriesModel);
            using var file = GgufFile.Open(link);
            Assert.Equal(new FileInfo(TestData.StoriesModel).Length, file.Length);
            Assert.NotEmpty(file.Tensors);
        }
        finally { dir.Delete(recursive: true); }
    }

    [Theory]
    [InlineData(0)]     // no general.alignment: 32
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(8)]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(4096)]
    public void Synthetic_file_round_trips(int alignment)
    {
        var writer = GgufSynthetic.Build(alignment, ggufCpp: false, seed: alignment, out var data);
        var bytes = writer.ToBytes();
        using var file = GgufFile.Read(bytes);

        Assert.Equal(3u, file.Version);
        int expectedAlignment = alignment == 0 ? GgufFile.DefaultAlignment : alignment;
        Assert.Equal(expectedAlignment, file.Alignment);
        Assert.Equal(0, file.DataOffset % expectedAlignment);
        Assert.Equal(writer.Metadata.Select(kv => kv.Key), file.Metadata.Select(kv => kv.Key));
        for (int i = 0; i < writer.Metadata.Count; i++)
            Assert.True(writer.Metadata[i].Value.Equals(file.Metadata[i].Value),
                $"{writer.Metadata[i].Key}: wrote {writer.Metadata[i].Value}, read {file.Metadata[i].Value}");
        Assert.Equal(writer.Tensors.Count, file.Tensors.Count);
        for (int i = 0; i < file.Tensors.Count; i++)
        {
            var (w, r) = (writer.Tensors[i], file.Tensors[i]);
            Assert.Equal(w.Name, r.Name);
            Assert.Equal(w.Type, r.Type);
            Assert.Equal(w.Shape, r.Shape);
            Assert.Equal(w.Offset, r.Offset);
            Assert.Equal(0, r.Offset % expectedAlignment);
            Assert.True(file.GetTensorBytes(r).SequenceEqual(data[r.Name]), $"{r.Name}: data differs");
        }

        // Writing what was read gives the same file.
        AssertSameBytes(bytes, GgufWriter.CopyOf(file).ToBytes(), $"alignment {alignment}");
    }

    [Fact]
    public void Nested_arrays_round_trip()
    {
        var w = new GgufWriter();
        foreach (var (k, v) in GgufSynthetic.NestedArrays()) w.Set(k, v);
        var bytes = w.ToBytes();
        using var file = GgufFile.Read(bytes);
        var deep = file["n.deep"].AsArray();
        Assert.Equal(GgufValueType.Array, deep.ElementType);
        var level1 = deep.As<GgufArray>()[0];
        Assert.Equal([1, 2, 3], level1.As<GgufArray>()[0].As<int>());
        Assert.Equal(["p", "q"], level1.As<GgufArray>()[1].As<GgufArray>()[0].As<string>());
        Assert.Equal(0, file["n.empty"].AsArray().Count);
        AssertSameBytes(bytes, GgufWriter.CopyOf(file).ToBytes(), "nested arrays");
    }

    [Fact]
    public void Writer_lays_out_the_sample_exactly_as_the_hand_made_image()
    {
        // The writer and the hand-made builder share no code: equal bytes check the writer's layout field by field.
        var image = GgufSamples.Valid();
        var expected = image.ToArray();
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Architecture, GgufValue.String("llama"));
        w.Set(GgufKeys.General.Alignment, GgufValue.UInt32(32));
        w.Set("test.flag", GgufValue.Bool(true));
        w.Set("test.list", GgufValue.Array(GgufArray.Of([1, 2, -3])));
        w.Set("test.names", GgufValue.Strings(["a", "bc"]));
        w.Set("test.f", GgufValue.Float32(0.5f));
        for (int i = 0; i < GgufSamples.ValidTensors.Length; i++)
        {
            var (name, type, shape, offset, size) = GgufSamples.ValidTensors[i];
            var info = w.AddTensor(name, type, shape, expected.AsMemory((int)image.At($"data[{i}]"), size));
            Assert.Equal(offset, info.Offset);
        }
        AssertSameBytes(expected, w.ToBytes(), "sample");
    }

    [Fact]
    public void File_without_tensors_ends_after_its_metadata()
    {
        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.String("abc"));
        var expected = new GgufImage().Header(0, 1).KvString("general.architecture", "abc").ToArray();
        AssertSameBytes(expected, w.ToBytes(), "no tensors");
    }

    [Fact]
    public void Version_2_round_trips()
    {
        var w = new GgufWriter(version: 2);
        w.Set("k", GgufValue.UInt8(1));
        w.AddTensor("t", GgmlType.F32, [2], new byte[8]);
        var bytes = w.ToBytes();
        using var file = GgufFile.Read(bytes);
        Assert.Equal(2u, file.Version);
        AssertSameBytes(bytes, GgufWriter.CopyOf(file).ToBytes(), "version 2");
    }
}
