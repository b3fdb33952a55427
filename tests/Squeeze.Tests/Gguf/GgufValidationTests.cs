using System.Buffers.Binary;
using Squeeze.Gguf;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Gguf;

/// <summary>One test per validation rule of <see cref="GgufFile"/>, each with a hand-made corrupt image.</summary>
public class GgufValidationTests
{
    private static GgufFormatException Rejects(byte[] image, string field, long offset)
    {
        var ex = Assert.Throws<GgufFormatException>(() => { using var f = GgufFile.Read(image); });
        Assert.Equal(field, ex.Field);
        Assert.Equal(offset, ex.Offset);
        Assert.Contains($"offset {offset}", ex.Message);
        Assert.False(string.IsNullOrEmpty(ex.Expected));
        Assert.False(string.IsNullOrEmpty(ex.Found));
        return ex;
    }

    /// <summary>A file with one tensor and the given metadata, for rules about keys and values.</summary>
    private static GgufImage WithMetadata(int kvCount, Action<GgufImage> kvs)
    {
        var b = new GgufImage().Header(tensorCount: 1, kvCount: kvCount);
        kvs(b);
        b.TensorInfo("w", [4], GgmlType.F32, 0).Pad(32).Raw(new byte[16]).Pad(32);
        return b;
    }

    /// <summary>A file with no metadata and the given tensor infos followed by a data section of <paramref name="dataBytes"/>.</summary>
    private static GgufImage WithTensors(int tensorCount, Action<GgufImage> infos, int dataBytes = 64)
    {
        var b = new GgufImage().Header(tensorCount: tensorCount, kvCount: 0);
        infos(b);
        b.Pad(32, "data.pad").Raw(new byte[dataBytes], "data[0]");
        return b;
    }

    // ---- the sample itself ----

    [Fact]
    public void Valid_sample_reads_with_every_value()
    {
        var image = GgufSamples.Valid();
        using var f = GgufFile.Read(image.ToArray());
        Assert.Equal(3u, f.Version);
        Assert.Equal(32, f.Alignment);
        Assert.Equal(image.At("data[0]"), f.DataOffset);
        Assert.Equal(0, f.DataOffset % 32);
        Assert.Equal([GgufKeys.General.Architecture, GgufKeys.General.Alignment, "test.flag", "test.list", "test.names", "test.f"],
            f.Metadata.Select(kv => kv.Key));
        Assert.Equal("llama", f.Architecture);
        Assert.Equal(GgufValue.UInt32(32), f[GgufKeys.General.Alignment]);
        Assert.True(f["test.flag"].AsBool());
        Assert.Equal([1, 2, -3], f["test.list"].AsArray().As<int>());
        Assert.Equal(["a", "bc"], f["test.names"].AsArray().As<string>());
        Assert.Equal(0.5f, (float)f["test.f"].Value);
        Assert.Equal(GgufSamples.ValidTensors.Length, f.Tensors.Count);
        var bytes = image.ToArray();
        for (int i = 0; i < f.Tensors.Count; i++)
        {
            var (name, type, shape, offset, size) = GgufSamples.ValidTensors[i];
            var t = f.Tensors[i];
            Assert.Equal(name, t.Name);
            Assert.Equal(type, t.Type);
            Assert.Equal(shape, t.Shape);
            Assert.Equal(offset, t.Offset);
            Assert.Equal(size, t.ByteSize);
            Assert.Equal(bytes.AsSpan((int)image.At($"data[{i}]"), size), f.GetTensorBytes(t));
        }
    }

    // ---- header ----

    [Fact]
    public void Bad_magic()
    {
        var ex = Rejects(GgufSamples.Valid().Patch("header.magic", "GGUX"u8), "header.magic", 0);
        Assert.Contains("GGUX", ex.Found);
    }

    [Fact]
    public void Big_endian_magic_FUGG()
    {
        var ex = Rejects(GgufSamples.Valid().Patch("header.magic", "FUGG"u8), "header.magic", 0);
        Assert.Contains("big-endian", ex.Found);
    }

    [Fact]
    public void Big_endian_version()
    {
        // A big-endian writer stores the magic as "GGUF" and everything after it byte-swapped.
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(v, 3);
        var ex = Rejects(GgufSamples.Valid().Patch("header.version", v), "header.version", 4);
        Assert.Contains("big-endian", ex.Found);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(1u)]
    [InlineData(4u)]
    [InlineData(0xFFFFFFFFu)]
    public void Unsupported_version(uint version)
    {
        var ex = Rejects(GgufSamples.Valid().PatchU32("header.version", version), "header.version", 4);
        Assert.Contains(version.ToString(), ex.Found);
    }

    [Fact]
    public void Version_2_is_read()
    {
        using var f = GgufFile.Read(GgufSamples.Valid().PatchU32("header.version", 2));
        Assert.Equal(2u, f.Version);
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(long.MinValue)]
    [InlineData(1L << 40)]
    [InlineData(long.MaxValue)]
    public void Tensor_count_negative_or_more_than_the_file_holds(long count) =>
        Rejects(GgufSamples.Valid().PatchI64("header.tensor_count", count), "header.tensor_count", 8);

    [Theory]
    [InlineData(-1L)]
    [InlineData(long.MinValue)]
    [InlineData(1L << 40)]
    [InlineData(long.MaxValue)]
    public void Kv_count_negative_or_more_than_the_file_holds(long count) =>
        Rejects(GgufSamples.Valid().PatchI64("header.metadata_kv_count", count), "header.metadata_kv_count", 16);

    [Fact]
    public void Tensor_count_just_beyond_what_the_rest_holds()
    {
        // A count the file could hold by size, but there are not that many infos: the read runs off the end.
        var image = GgufSamples.Valid();
        var bytes = image.PatchI64("header.tensor_count", 4);
        var ex = Assert.Throws<GgufFormatException>(() => GgufFile.Read(bytes));
        Assert.StartsWith("tensor[3]", ex.Field);
    }

    // ---- strings ----

    [Theory]
    [InlineData(1000UL)]
    [InlineData(1UL << 31)]
    [InlineData(ulong.MaxValue)]
    public void Key_length_past_the_end(ulong length)
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchU64("kv[0].key", length), "metadata[0].key.length", image.At("kv[0].key"));
    }

    [Fact]
    public void String_value_length_past_the_end()
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchU64("kv[0].value", (ulong)image.Length), $"metadata '{GgufKeys.General.Architecture}'.length", image.At("kv[0].value"));
    }

    [Fact]
    public void Tensor_name_length_past_the_end()
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchU64("t[1].name", 1UL << 40), "tensor[1].name.length", image.At("t[1].name"));
    }

    [Fact]
    public void Array_count_past_the_end()
    {
        var image = GgufSamples.Valid();
        // 4-byte elements: a count whose bytes exceed what is left, though the count itself is below the file size.
        ulong count = (ulong)(image.Length - image.At("kv[3].count")) / 4 + 1;
        Rejects(image.PatchU64("kv[3].count", count), "metadata 'test.list'.count", image.At("kv[3].count"));
        Rejects(image.PatchU64("kv[3].count", ulong.MaxValue), "metadata 'test.list'.count", image.At("kv[3].count"));
    }

    [Fact]
    public void String_array_count_past_the_end()
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchU64("kv[4].count", 1UL << 62), "metadata 'test.names'.count", image.At("kv[4].count"));
    }

    [Fact]
    public void Array_count_above_the_gguf_maximum()
    {
        // 2^30 + 1 one-byte elements: more than gguf.cpp's GGUF_MAX_ARRAY_ELEMENTS even if the file held them.
        var b = WithMetadata(1, m => m.Kv("big", GgufValueType.Array, v => v.Array((uint)GgufValueType.UInt8, (1UL << 30) + 1, _ => { }, "kv[0]")));
        Rejects(b.ToArray(), "metadata 'big'.count", b.At("kv[0].count"));
    }

    // ---- value types ----

    [Theory]
    [InlineData(13u)]
    [InlineData(0xFFFFFFFFu)]
    public void Invalid_value_type(uint type)
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchU32("kv[2].type", type), "metadata 'test.flag'.type", image.At("kv[2].type"));
    }

    [Fact]
    public void Invalid_array_element_type()
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchU32("kv[3].element_type", 13), "metadata 'test.list'.element_type", image.At("kv[3].element_type"));
    }

    [Theory]
    [InlineData((byte)2)]
    [InlineData((byte)0xFF)]
    public void Bool_other_than_0_or_1(byte value)
    {
        var image = GgufSamples.Valid();
        Rejects(image.Patch("kv[2].value", [value]), "metadata 'test.flag'", image.At("kv[2].value"));
    }

    [Fact]
    public void Bool_array_element_other_than_0_or_1()
    {
        var b = WithMetadata(1, m => m.Kv("flags", GgufValueType.Array, v => v.Array((uint)GgufValueType.Bool, 3, a => a.U8(0).U8(1).U8(7, "bad"), "kv[0]")));
        Rejects(b.ToArray(), "metadata 'flags'[2]", b.At("bad"));
    }

    // ---- keys ----

    [Fact]
    public void Duplicate_key()
    {
        var b = WithMetadata(3, m => m.KvU32("a", 1).KvU32("b", 2).KvU32("a", 3));
        var ex = Rejects(b.ToArray(), "metadata[2].key", b.At("kv[2].key"));
        Assert.Contains("'a'", ex.Found);
    }

    [Fact]
    public void Empty_key()
    {
        var b = WithMetadata(2, m => m.KvU32("a", 1).KvU32("", 2));
        Rejects(b.ToArray(), "metadata[1].key", b.At("kv[1].key"));
    }

    [Fact]
    public void Key_with_a_NUL_byte()
    {
        var b = WithMetadata(1, m => m.KvU32("general.alignment\0x", 64));
        Rejects(b.ToArray(), "metadata[0].key", b.At("kv[0].key"));
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]                 // never valid in UTF-8
    [InlineData(new byte[] { 0xC3 })]                 // truncated two-byte sequence
    [InlineData(new byte[] { 0xC0, 0x80 })]           // overlong NUL
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })]     // UTF-16 surrogate
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 })] // above U+10FFFF
    public void Invalid_utf8_key(byte[] bad)
    {
        var image = new GgufImage().Header(1, 1).StrBytes([(byte)'k', .. bad], "key").U32((uint)GgufValueType.UInt8).U8(1)
            .TensorInfo("w", [4], GgmlType.F32, 0).Pad(32).Raw(new byte[16]);
        Rejects(image.ToArray(), "metadata[0].key", image.At("key.text"));
    }

    [Fact]
    public void Invalid_utf8_string_value()
    {
        var image = GgufSamples.Valid();
        long text = image.At("kv[0].value") + 8;
        Rejects(GgufImage.Patch(image.ToArray(), text, [0xFE]), $"metadata '{GgufKeys.General.Architecture}'", text);
    }

    [Fact]
    public void Invalid_utf8_in_a_string_array()
    {
        var image = GgufSamples.Valid();
        // "test.names" holds "a" then "bc": the second string's text starts 8 + 1 + 8 bytes after the count.
        long text = image.At("kv[4].count") + 8 + 8 + 1 + 8;
        Rejects(GgufImage.Patch(image.ToArray(), text, [0x80]), "metadata 'test.names'[1]", text);
    }

    [Fact]
    public void Invalid_utf8_tensor_name()
    {
        var image = GgufSamples.Valid();
        Rejects(image.Patch("t[0].name.text", [0xC3, 0x28]), "tensor[0].name", image.At("t[0].name.text"));
    }

    // ---- alignment ----

    [Theory]
    [InlineData(GgufValueType.UInt64)]
    [InlineData(GgufValueType.Int32)]
    [InlineData(GgufValueType.UInt16)]
    [InlineData(GgufValueType.String)]
    public void Alignment_of_the_wrong_type(GgufValueType type)
    {
        var b = WithMetadata(1, m => m.Kv(GgufKeys.General.Alignment, type, v =>
        {
            switch (type)
            {
                case GgufValueType.UInt64: v.U64(32); break;
                case GgufValueType.Int32: v.U32(32); break;
                case GgufValueType.UInt16: v.U16(32); break;
                default: v.Str("32"); break;
            }
        }));
        var ex = Rejects(b.ToArray(), GgufKeys.General.Alignment, b.At("kv[0].type"));
        Assert.Contains(type.ShortName(), ex.Found);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(48u)]
    [InlineData(0x80000001u)]
    public void Alignment_zero_or_not_a_power_of_two(uint alignment)
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchU32("kv[1].value", alignment), GgufKeys.General.Alignment, image.At("kv[1].value"));
    }

    [Theory]
    [InlineData(1u)]
    [InlineData(8u)]
    [InlineData(64u)]
    public void Other_power_of_two_alignments_are_read(uint alignment)
    {
        var b = new GgufImage().Header(1, 1).KvU32(GgufKeys.General.Alignment, alignment)
            .TensorInfo("w", [3], GgmlType.F32, 0).Pad((int)alignment).Raw(new byte[12], "data").Pad((int)alignment);
        using var f = GgufFile.Read(b.ToArray());
        Assert.Equal((int)alignment, f.Alignment);
        Assert.Equal(b.At("data"), f.DataOffset);
    }

    // ---- tensor infos ----

    [Fact]
    public void Tensor_name_of_64_bytes_or_more()
    {
        var b = WithTensors(1, t => t.TensorInfo(new string('x', 64), [4], GgmlType.F32, 0));
        var ex = Rejects(b.ToArray(), "tensor[0].name", b.At("t[0].name"));
        Assert.Contains("64 bytes", ex.Found);

        // Bytes, not characters: 32 two-byte characters are 64 bytes.
        var wide = WithTensors(1, t => t.TensorInfo(new string('é', 32), [4], GgmlType.F32, 0));
        Rejects(wide.ToArray(), "tensor[0].name", wide.At("t[0].name"));
    }

    [Fact]
    public void Tensor_name_with_a_NUL_byte()
    {
        var b = WithTensors(2, t => t.TensorInfo("w\0a", [4], GgmlType.F32, 0).TensorInfo("w\0b", [4], GgmlType.F32, 32));
        Rejects(b.ToArray(), "tensor[0].name", b.At("t[0].name"));
    }

    [Fact]
    public void Tensor_name_of_63_bytes_is_read()
    {
        using var f = GgufFile.Read(WithTensors(1, t => t.TensorInfo(new string('x', 63), [4], GgmlType.F32, 0)).ToArray());
        Assert.Equal(63, f.Tensors[0].Name.Length);
    }

    [Fact]
    public void Duplicate_tensor_name()
    {
        var b = WithTensors(2, t => t.TensorInfo("w", [4], GgmlType.F32, 0).TensorInfo("w", [4], GgmlType.F32, 32));
        var ex = Rejects(b.ToArray(), "tensor[1].name", b.At("t[1].name"));
        Assert.Contains("'w'", ex.Found);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(5u)]
    [InlineData(0xFFFFFFFFu)]
    public void Dimension_count_outside_1_to_4(uint nDims)
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchU32("t[1].n_dims", nDims), "tensor 'blk.0.attn_q.weight'.n_dims", image.At("t[1].n_dims"));
    }

    [Fact]
    public void Four_dimensions_are_read()
    {
        using var f = GgufFile.Read(WithTensors(1, t => t.TensorInfo("w", [2, 1, 3, 2], GgmlType.F32, 0), dataBytes: 48).ToArray());
        Assert.Equal([2L, 1, 3, 2], f.Tensors[0].Shape);
        Assert.Equal(48, f.Tensors[0].ByteSize);
    }

    [Theory]
    [InlineData(0, -1L)]
    [InlineData(1, -1L)]
    [InlineData(1, long.MinValue)]
    public void Negative_dimension(int dim, long value)
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchI64($"t[1].ne[{dim}]", value), $"tensor 'blk.0.attn_q.weight'.ne[{dim}]", image.At($"t[1].ne[{dim}]"));
    }

    [Fact]
    public void Element_count_overflow()
    {
        var b = WithTensors(1, t => t.TensorInfo("w", [1L << 32, 1L << 20, 1L << 20], GgmlType.F32, 0));
        Rejects(b.ToArray(), "tensor 'w'.shape", b.At("t[0].ne[2]"));

        var two = WithTensors(1, t => t.TensorInfo("w", [long.MaxValue, 2], GgmlType.F32, 0));
        Rejects(two.ToArray(), "tensor 'w'.shape", two.At("t[0].ne[1]"));
    }

    [Fact]
    public void Byte_size_overflow()
    {
        // 2^62 F32 elements fit in an element count but not in a byte size.
        var b = WithTensors(1, t => t.TensorInfo("w", [1L << 31, 1L << 31], GgmlType.F32, 0));
        Rejects(b.ToArray(), "tensor 'w'.size", b.At("t[0].type"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Zero_in_a_higher_dimension(int dim)
    {
        // llama.cpp divides by ne[1..3] when it loads a file: such a file crashes it, so Squeeze refuses it.
        var shape = new long[] { 4, 1, 1, 1 };
        shape[dim] = 0;
        var b = WithTensors(1, t => t.TensorInfo("w", shape, GgmlType.F32, 0));
        Rejects(b.ToArray(), $"tensor 'w'.ne[{dim}]", b.At($"t[0].ne[{dim}]"));
    }

    [Fact]
    public void Huge_tensor_beyond_the_file()
    {
        // Representable in size, far beyond the file.
        var b = WithTensors(1, t => t.TensorInfo("w", [1L << 20, 1L << 20], GgmlType.F32, 0));
        Rejects(b.ToArray(), "tensor 'w'.offset", b.At("t[0].offset"));
    }

    [Theory]
    [InlineData(4u)]    // Q4_2, removed
    [InlineData(5u)]    // Q4_3, removed
    [InlineData(31u)]   // Q4_0_4_4, removed
    [InlineData(43u)]   // GGML_TYPE_COUNT
    [InlineData(1000u)]
    [InlineData(0xFFFFFFFFu)]
    public void Unknown_type_id(uint type)
    {
        var image = GgufSamples.Valid();
        var ex = Rejects(image.PatchU32("t[0].type", type), "tensor 'token_embd.weight'.type", image.At("t[0].type"));
        Assert.Contains(type.ToString(), ex.Found);
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 33L)]
    [InlineData(GgmlType.Q4_K, 128L)]
    [InlineData(GgmlType.Q2_0, 32L)]
    public void Row_length_not_a_multiple_of_the_block_size(GgmlType type, long rowLength)
    {
        var b = WithTensors(1, t => t.TensorInfo("w", [rowLength, 2], type, 0), dataBytes: 1024);
        Rejects(b.ToArray(), "tensor 'w'.ne[0]", b.At("t[0].ne[0]"));
    }

    [Theory]
    [InlineData(8UL)]
    [InlineData(65UL)]
    [InlineData(ulong.MaxValue)]
    public void Tensor_offset_not_aligned(ulong offset)
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchU64("t[1].offset", offset), "tensor 'blk.0.attn_q.weight'.offset", image.At("t[1].offset"));
    }

    [Theory]
    [InlineData(1UL << 20)]
    [InlineData(1UL << 62)]
    [InlineData(0x8000000000000000UL)] // negative as a signed offset
    public void Tensor_offset_outside_the_file(ulong offset)
    {
        var image = GgufSamples.Valid();
        Rejects(image.PatchU64("t[2].offset", offset), "tensor 'output_norm.weight'.offset", image.At("t[2].offset"));
    }

    [Fact]
    public void Tensor_data_running_past_the_end()
    {
        // The offset is inside the file, the data is not: the last tensor's data is cut short.
        var image = GgufSamples.Valid();
        var cut = image.ToArray()[..(int)(image.At("data[2]") + 4)];
        Rejects(cut, "tensor 'output_norm.weight'.offset", image.At("t[2].offset"));
    }

    [Fact]
    public void Overlapping_tensors()
    {
        var image = GgufSamples.Valid();
        // blk.0.attn_q.weight moved onto token_embd.weight's bytes.
        var ex = Rejects(image.PatchU64("t[1].offset", 32), "tensor 'blk.0.attn_q.weight'.offset", image.At("t[1].offset"));
        Assert.Contains("token_embd.weight", ex.Expected);
        // The same tensor placed first and the other overlapping its end.
        var swapped = WithTensors(2, t => t.TensorInfo("a", [16], GgmlType.F32, 32).TensorInfo("b", [16], GgmlType.F32, 64), dataBytes: 128);
        Rejects(swapped.ToArray(), "tensor 'b'.offset", swapped.At("t[1].offset"));
    }

    [Fact]
    public void Tensors_out_of_order_and_zero_size_tensors_are_read()
    {
        // Not the layout llama.cpp writes, but valid: aligned, inside the file, not overlapping.
        var b = WithTensors(3, t => t.TensorInfo("late", [8], GgmlType.F32, 32).TensorInfo("early", [8], GgmlType.F32, 0)
            .TensorInfo("empty", [0, 4], GgmlType.Q8_0, 32), dataBytes: 64);
        using var f = GgufFile.Read(b.ToArray());
        Assert.Equal(["late", "early", "empty"], f.Tensors.Select(t => t.Name));
        Assert.Equal(0, f.FindTensor("empty")!.ByteSize);
    }

    [Fact]
    public void Data_section_beyond_the_file()
    {
        var image = GgufSamples.Valid();
        long infosEnd = image.At("data.pad");
        Assert.NotEqual(0, infosEnd % 32); // the sample needs padding before its data
        var cut = image.ToArray()[..(int)infosEnd];
        Rejects(cut, "data section", infosEnd);
    }

    [Fact]
    public void Truncation_at_every_field_boundary()
    {
        var image = GgufSamples.Valid();
        var bytes = image.ToArray();
        long lastData = image.At("data[2]") + GgufSamples.ValidTensors[2].Bytes;
        int checkedCuts = 0;
        foreach (long cut in image.Boundaries.Where(b => b < lastData).Append(lastData - 1))
        {
            var ex = Assert.Throws<GgufFormatException>(() => GgufFile.Read(bytes[..(int)cut]));
            Assert.True(ex.Offset <= cut, $"cut at {cut}: error reported at {ex.Offset} ({ex.Message})");
            checkedCuts++;
        }
        Assert.True(checkedCuts > 40, $"only {checkedCuts} boundaries");
    }

    [Fact]
    public void Truncation_at_every_byte_before_the_end_of_the_data()
    {
        var image = GgufSamples.Valid();
        var bytes = image.ToArray();
        long lastData = image.At("data[2]") + GgufSamples.ValidTensors[2].Bytes;
        for (int cut = 0; cut < lastData; cut++)
        {
            var ex = Assert.Throws<GgufFormatException>(() => GgufFile.Read(bytes[..cut]));
            Assert.True(ex.Offset <= cut, $"cut at {cut}: error reported at {ex.Offset} ({ex.Message})");
        }
    }

    [Fact]
    public void Missing_padding_after_the_last_tensor_is_accepted()
    {
        // As in llama.cpp's loader: only the tensors' own bytes must be in the file.
        var image = GgufSamples.Valid();
        long lastData = image.At("data[2]") + GgufSamples.ValidTensors[2].Bytes;
        Assert.True(lastData < image.Length);
        using var f = GgufFile.Read(image.ToArray()[..(int)lastData]);
        Assert.Equal(8, f.GetTensorBytes(f.Tensors[2]).Length);
    }

    [Fact]
    public void File_without_tensors_needs_no_data_section()
    {
        var b = new GgufImage().Header(0, 1).KvString("general.architecture", "x");
        using var f = GgufFile.Read(b.ToArray());
        Assert.Empty(f.Tensors);
        Assert.Equal(b.Length, f.DataOffset);
    }

    // ---- opening files ----

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void Opening_a_file_shorter_than_the_magic(int length)
    {
        var path = Path.Combine(Path.GetTempPath(), $"squeeze-gguf-{Guid.NewGuid():N}.gguf");
        try
        {
            File.WriteAllBytes(path, "GGU"u8[..length].ToArray());
            var ex = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path));
            Assert.Equal("header.magic", ex.Field);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Opening_a_corrupt_file_releases_it()
    {
        var path = Path.Combine(Path.GetTempPath(), $"squeeze-gguf-{Guid.NewGuid():N}.gguf");
        try
        {
            File.WriteAllBytes(path, GgufSamples.Valid().PatchU32("header.version", 9));
            Assert.Throws<GgufFormatException>(() => GgufFile.Open(path));
            // The mapping was disposed: the file can be overwritten and opened again.
            File.WriteAllBytes(path, GgufSamples.Valid().ToArray());
            using var f = GgufFile.Open(path);
            Assert.Equal(path, f.Path);
            Assert.Equal(3, f.Tensors.Count);
        }
        finally { File.Delete(path); }
    }
}
