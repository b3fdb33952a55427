using System.Buffers.Binary;
using Squeeze.Gguf;
using Squeeze.Quants;
using Squeeze.Tests;
using Squeeze.Tests.Gguf;
using Xunit;

namespace Squeeze.Oracle.Tests.Gguf;

/// <summary>Squeeze's GGUF reader and writer against llama.cpp's <c>gguf_init_from_file</c> and model loader.</summary>
public sealed class GgufOracleTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("squeeze-gguf-oracle-");

    public GgufOracleTests() => OracleLibrary.EnsureLoaded();

    public void Dispose() => _dir.Delete(recursive: true);

    private string TempFile(string name) => Path.Combine(_dir.FullName, name);

    private string WriteTemp(string name, byte[] bytes)
    {
        var path = TempFile(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

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

    /// <summary>gguf.cpp hands strings out as C strings: compare up to the first NUL.</summary>
    private static GgufValue AsCStrings(GgufValue v) => v.Value switch
    {
        string s => GgufValue.String(CString(s)),
        GgufArray { ElementType: GgufValueType.String } a => GgufValue.Strings(a.As<string>().Select(CString)),
        _ => v,
    };

    private static string CString(string s) => s.IndexOf('\0') is var i and >= 0 ? s[..i] : s;

    /// <summary>Everything gguf.cpp reports about the file equals what Squeeze read.</summary>
    internal static void AssertAgrees(GgufFile squeeze, OracleGgufFile llama, string what)
    {
        Assert.Equal(llama.Version, squeeze.Version);
        Assert.Equal(llama.Alignment, squeeze.Alignment);
        Assert.Equal(llama.DataOffset, squeeze.DataOffset);
        Assert.Equal(llama.Metadata.Select(kv => kv.Key), squeeze.Metadata.Select(kv => kv.Key));
        for (int i = 0; i < llama.Metadata.Count; i++)
        {
            var (key, expected) = (llama.Metadata[i].Key, llama.Metadata[i].Value);
            var actual = AsCStrings(squeeze.Metadata[i].Value);
            Assert.True(expected.Equals(actual), $"{what}: '{key}': llama.cpp read {expected.Type.ShortName()} {expected}, Squeeze {actual.Type.ShortName()} {actual}");
            if (expected.Value is GgufArray ea)
                Assert.Equal(ea.ElementType, ((GgufArray)actual.Value).ElementType);
        }
        Assert.Equal(llama.Tensors.Count, squeeze.Tensors.Count);
        for (int i = 0; i < llama.Tensors.Count; i++)
        {
            var (l, s) = (llama.Tensors[i], squeeze.Tensors[i]);
            Assert.Equal(l.Name, s.Name);
            Assert.Equal(l.Type, s.Type);
            Assert.Equal(l.Ne, s.Shape.Concat(Enumerable.Repeat(1L, 4 - s.Shape.Count)).ToArray());
            Assert.Equal(l.Offset, s.Offset);
            Assert.Equal(l.Size, s.ByteSize);
        }
    }

    // ---- reading what llama.cpp wrote ----

    [Theory]
    [MemberData(nameof(SharedFiles))]
    public void Squeeze_reads_shared_files_as_gguf_cpp_does(string relative)
    {
        var path = TestData.Require(relative);
        var llama = OracleGguf.Read(path, noAlloc: false);
        Assert.NotNull(llama);
        using var squeeze = GgufFile.Open(path);
        AssertAgrees(squeeze, llama, relative);

        // gguf.cpp's own writer would lay out the header, metadata and tensor infos exactly as the file has them
        // (it pads that part to the alignment even without tensors, where Squeeze and gguf-py stop).
        var file = File.ReadAllBytes(path);
        Assert.True(llama.Meta.AsSpan(0, (int)squeeze.DataOffset).SequenceEqual(file.AsSpan(0, (int)squeeze.DataOffset)),
            $"{relative}: gguf.cpp's metadata bytes differ from the file's");
        Assert.True(llama.Meta.AsSpan((int)squeeze.DataOffset).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(squeeze.Tensors.Count > 0 ? squeeze.DataOffset : (squeeze.DataOffset + squeeze.Alignment - 1) / squeeze.Alignment * squeeze.Alignment,
            llama.Meta.Length);
    }

    // ---- llama.cpp reading what Squeeze wrote ----

    [Theory]
    [MemberData(nameof(SharedFiles))]
    public void Round_tripped_shared_files_load_in_gguf_cpp(string relative)
    {
        var path = TestData.Require(relative);
        var copy = TempFile("copy.gguf");
        using (var original = GgufFile.Open(path)) GgufWriter.CopyOf(original).WriteTo(copy);
        var llama = OracleGguf.Read(copy, noAlloc: false);
        Assert.NotNull(llama);
        using var squeeze = GgufFile.Open(copy);
        AssertAgrees(squeeze, llama, relative + " (copy)");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(4096)]
    public void Synthetic_files_written_by_Squeeze_load_in_gguf_cpp(int alignment)
    {
        var path = TempFile($"synthetic-{alignment}.gguf");
        GgufSynthetic.Build(alignment, ggufCpp: true, seed: alignment).WriteTo(path);
        var llama = OracleGguf.Read(path, noAlloc: false);
        Assert.NotNull(llama);
        using var squeeze = GgufFile.Open(path);
        AssertAgrees(squeeze, llama, $"synthetic, alignment {alignment}");
        // Every scalar type and every flat array type made it through.
        Assert.Equal(Enum.GetValues<GgufValueType>().Where(t => t != GgufValueType.Array).Order(),
            llama.Metadata.Where(kv => kv.Value.Type != GgufValueType.Array).Select(kv => kv.Value.Type).Distinct().Order());
        Assert.Equal(Enum.GetValues<GgufValueType>().Where(t => t != GgufValueType.Array).Order(),
            llama.Metadata.Where(kv => kv.Value.Type == GgufValueType.Array).Select(kv => kv.Value.AsArray().ElementType).Distinct().Order());
    }

    [Fact]
    public void Nested_arrays_are_what_gguf_cpp_does_not_read()
    {
        // The only thing Squeeze writes that gguf.cpp refuses; the writer leaves nested arrays to the caller.
        var w = new GgufWriter();
        foreach (var (k, v) in GgufSynthetic.NestedArrays().Take(1)) w.Set(k, v);
        var path = TempFile("nested.gguf");
        w.WriteTo(path);
        Assert.Null(OracleGguf.Read(path));
        using var squeeze = GgufFile.Open(path);
        Assert.Single(squeeze.Metadata);
    }

    public static TheoryData<string> Models() => new("models/stories260K.gguf", "models/tiny-qwen3-5M-F32.gguf", "models/tiny-qwen3-5M-F16.gguf");

    [Theory]
    [MemberData(nameof(Models))]
    public void Round_tripped_models_load_in_llama_cpp(string relative)
    {
        var path = TestData.Require(relative);
        var copy = TempFile("model.gguf");
        using (var original = GgufFile.Open(path)) GgufWriter.CopyOf(original).WriteTo(copy);
        var expected = OracleModel.Probe(path);
        var actual = OracleModel.Probe(copy);
        Assert.NotNull(expected);
        Assert.NotNull(actual);
        Assert.Equal(expected, actual);
        Assert.True(actual.Value.Layers > 0 && actual.Value.Parameters > 0);
    }

    // ---- corrupt files ----

    /// <summary>Corrupt images that gguf.cpp rejects without aborting (see <see cref="OracleGguf"/>).</summary>
    public static TheoryData<string> Corruptions() => new(CorruptImages().Keys);

    private static Dictionary<string, byte[]> CorruptImages()
    {
        var v = GgufSamples.Valid();
        var bytes = v.ToArray();
        Span<byte> be3 = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(be3, 3);
        var images = new Dictionary<string, byte[]>
        {
            ["magic"] = v.Patch("header.magic", "GGUX"u8),
            ["magic FUGG"] = v.Patch("header.magic", "FUGG"u8),
            ["version big-endian"] = v.Patch("header.version", be3),
            ["version 0"] = v.PatchU32("header.version", 0),
            ["version 1"] = v.PatchU32("header.version", 1),
            ["version 4"] = v.PatchU32("header.version", 4),
            ["tensor count -1"] = v.PatchI64("header.tensor_count", -1),
            ["tensor count 2^40"] = v.PatchI64("header.tensor_count", 1L << 40),
            ["kv count -1"] = v.PatchI64("header.metadata_kv_count", -1),
            ["kv count 2^40"] = v.PatchI64("header.metadata_kv_count", 1L << 40),
            ["key length"] = v.PatchU64("kv[0].key", 1UL << 31),
            ["string length"] = v.PatchU64("kv[0].value", (ulong)v.Length),
            ["array count"] = v.PatchU64("kv[3].count", 1UL << 40),
            ["string array count"] = v.PatchU64("kv[4].count", 1UL << 40),
            ["value type 13"] = v.PatchU32("kv[2].type", 13),
            ["element type 13"] = v.PatchU32("kv[3].element_type", 13),
            ["alignment 0"] = v.PatchU32("kv[1].value", 0),
            ["alignment 48"] = v.PatchU32("kv[1].value", 48),
            ["n_dims 5"] = v.PatchU32("t[1].n_dims", 5),
            ["negative ne[1]"] = v.PatchI64("t[1].ne[1]", -1),
            ["type 4"] = v.PatchU32("t[0].type", 4),
            ["type 43"] = v.PatchU32("t[0].type", 43),
            ["type 1000"] = v.PatchU32("t[0].type", 1000),
            ["offset unaligned"] = v.PatchU64("t[1].offset", 72),
            ["data section beyond the file"] = bytes[..(int)v.At("data.pad")],
            ["data cut short"] = bytes[..(int)(v.At("data[2]") + 4)],
            ["cut in metadata"] = bytes[..(int)(v.At("kv[4].count") + 3)],
            ["cut in tensor infos"] = bytes[..(int)v.At("t[2].type")],
        };
        images["duplicate key"] = new GgufImage().Header(0, 2).KvU32("a", 1).KvU32("a", 2).ToArray();
        images["empty key"] = new GgufImage().Header(0, 1).KvU32("", 1).ToArray();
        images["name of 64 bytes"] = new GgufImage().Header(1, 0).TensorInfo(new string('x', 64), [4], GgmlType.F32, 0).Pad(32).Raw(new byte[32]).ToArray();
        images["duplicate tensor name"] = new GgufImage().Header(2, 0).TensorInfo("w", [4], GgmlType.F32, 0)
            .TensorInfo("w", [4], GgmlType.F32, 32).Pad(32).Raw(new byte[64]).ToArray();
        images["element count overflow"] = new GgufImage().Header(1, 0).TensorInfo("w", [1L << 32, 1L << 20, 1L << 20], GgmlType.F32, 0)
            .Pad(32).Raw(new byte[32]).ToArray();
        images["row length 33 of q8_0"] = new GgufImage().Header(1, 0).TensorInfo("w", [33], GgmlType.Q8_0, 0).Pad(32).Raw(new byte[64]).ToArray();
        return images;
    }

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Corrupt_files_gguf_cpp_rejects_are_rejected_by_Squeeze(string name)
    {
        var path = WriteTemp("corrupt.gguf", CorruptImages()[name]);
        Assert.Null(OracleGguf.Read(path, noAlloc: false)); // the premise: llama.cpp rejects it
        Assert.Throws<GgufFormatException>(() => GgufFile.Open(path));
    }

    /// <summary>Where the two readers knowingly differ. A change on either side shows up here.</summary>
    [Fact]
    public void Documented_differences_from_gguf_cpp()
    {
        var v = GgufSamples.Valid();

        // Squeeze is stricter: a bool byte other than 0/1, a tensor without dimensions, text that is not UTF-8.
        foreach (var (what, image) in new (string, byte[])[]
                 {
                     ("bool 2", v.Patch("kv[2].value", [2])),
                     ("n_dims 0", new GgufImage().Header(1, 0).TensorInfo("scalar", [], GgmlType.F32, 0).Pad(32).Raw(new byte[32]).ToArray()),
                     ("invalid UTF-8", GgufImage.Patch(v.ToArray(), v.At("kv[0].value") + 8, [0xFF])),
                 })
        {
            var path = WriteTemp("stricter.gguf", image);
            Assert.True(OracleGguf.Read(path, noAlloc: false) is not null, $"{what}: gguf.cpp rejects it");
            Assert.Throws<GgufFormatException>(() => GgufFile.Open(path));
        }

        // Squeeze is more lenient: tensors laid out in another order than their infos (aligned, not overlapping).
        var reordered = new GgufImage().Header(2, 0).TensorInfo("late", [8], GgmlType.F32, 32).TensorInfo("early", [8], GgmlType.F32, 0)
            .Pad(32).Raw(new byte[64]).ToArray();
        var reorderedPath = WriteTemp("reordered.gguf", reordered);
        Assert.Null(OracleGguf.Read(reorderedPath));
        using var f = GgufFile.Open(reorderedPath);
        Assert.Equal(2, f.Tensors.Count);
    }
}
