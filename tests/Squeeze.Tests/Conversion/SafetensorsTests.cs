using System.Text;
using Squeeze.Conversion;
using Squeeze.Numerics;
using Xunit;

namespace Squeeze.Tests.Conversion;

/// <summary>The safetensors reader: a valid file reads back exactly; each validation rule has a corrupt file.</summary>
public sealed class SafetensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (string, string, long[], byte[]) T(string name, string dtype, long[] shape, float[] values) =>
        (name, dtype, shape, HfCheckpoints.Encode(dtype, values));

    private static readonly float[] Six = [1f, -2.5f, 3.25f, 0f, -0f, 1e-3f];

    private string Write(byte[] bytes, string name = "model.safetensors")
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string Valid(Func<string, string>? edit = null) => Write(HfCheckpoints.SafetensorsBytes(
        [T("b.weight", "F32", [2, 3], Six), T("a.weight", "BF16", [3, 2], Six), T("c", "F16", [6], Six)], edit));

    private static SafetensorsFormatException Bad(string path, string field)
    {
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Contains(field, e.Field, StringComparison.Ordinal);
        Assert.IsAssignableFrom<InvalidInputException>(e);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void A_valid_file_lists_tensors_by_name_and_reads_their_values_exactly()
    {
        using var f = SafetensorsFile.Open(Valid());
        Assert.Equal(["a.weight", "b.weight", "c"], f.Tensors.Select(t => t.Name));
        Assert.Equal("pt", f.Metadata["format"]);
        foreach (var t in f.Tensors)
        {
            var values = new float[t.ElementCount];
            f.ReadRows(t, 0, (int)t.RowCount, values);
            var expected = Six.Select(x => t.DType switch
            {
                SafetensorsDType.F16 => Fp16.Round(x),
                SafetensorsDType.BF16 => Bf16.ToFloat(Bf16.FromFloat(x)),
                _ => x,
            }).ToArray();
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), values.Select(BitConverter.SingleToInt32Bits));
        }
        var a = f.Find("a.weight")!;
        Assert.Equal([3L, 2L], a.Shape);
        Assert.Equal(3, a.RowCount);
        Assert.Equal(2, a.RowLength);
    }

    [Fact]
    public void A_file_shorter_than_the_header_length_is_rejected() =>
        Bad(Write([1, 2, 3]), "header length");

    [Fact]
    public void A_header_length_past_the_end_is_rejected()
    {
        var bytes = File.ReadAllBytes(Valid());
        Bad(Write(bytes[..40]), "header length");
    }

    [Fact]
    public void A_huge_header_length_is_rejected()
    {
        var bytes = File.ReadAllBytes(Valid());
        BitConverter.GetBytes(ulong.MaxValue - 3).CopyTo(bytes, 0);
        Bad(Write(bytes), "header length");
    }

    [Fact]
    public void A_header_that_is_not_utf8_is_rejected()
    {
        var bytes = File.ReadAllBytes(Valid());
        bytes[9] = 0xFF;
        Bad(Write(bytes), "header");
    }

    [Fact]
    public void A_header_that_is_not_json_is_rejected() =>
        Bad(Valid(h => h.Replace("\"dtype\"", "dtype", StringComparison.Ordinal)), "header");

    [Fact]
    public void A_header_that_is_not_an_object_is_rejected()
    {
        var header = Encoding.UTF8.GetBytes("[1, 2, 3]");
        var bytes = BitConverter.GetBytes((ulong)header.Length).Concat(header).ToArray();
        Bad(Write(bytes), "header");
    }

    [Fact]
    public void An_entry_that_is_not_an_object_is_rejected() =>
        Bad(Valid(h => h.Replace("\"c\":{", "\"c\":7,\"d\":{", StringComparison.Ordinal)), "tensor 'c'");

    [Theory]
    [InlineData("dtype")]
    [InlineData("shape")]
    [InlineData("data_offsets")]
    public void An_entry_without_a_field_is_rejected(string field) =>
        Bad(Valid(h => h.Replace($"\"{field}\"", $"\"x{field}\"", StringComparison.Ordinal)), field);

    [Fact]
    public void An_unsupported_dtype_is_rejected()
    {
        var e = Bad(Valid(h => h.Replace("\"F16\"", "\"I64\"", StringComparison.Ordinal)), "dtype");
        Assert.Contains("I64", e.Found, StringComparison.Ordinal);
    }

    [Fact]
    public void A_negative_dimension_is_rejected() =>
        Bad(Valid(h => h.Replace("\"shape\":[6]", "\"shape\":[-6]", StringComparison.Ordinal)), "shape");

    [Fact]
    public void A_fractional_dimension_is_rejected() =>
        Bad(Valid(h => h.Replace("\"shape\":[6]", "\"shape\":[6.5]", StringComparison.Ordinal)), "shape");

    [Fact]
    public void Offsets_that_are_not_a_pair_are_rejected() =>
        Bad(Valid(h => h.Replace("\"data_offsets\":[36,48]", "\"data_offsets\":[36]", StringComparison.Ordinal)), "data_offsets");

    [Fact]
    public void Offsets_that_end_before_they_begin_are_rejected() =>
        Bad(Valid(h => h.Replace("\"data_offsets\":[36,48]", "\"data_offsets\":[48,36]", StringComparison.Ordinal)), "data_offsets");

    [Fact]
    public void Data_past_the_end_of_the_file_is_rejected()
    {
        var bytes = File.ReadAllBytes(Valid());
        var e = Bad(Write(bytes[..^4]), "data_offsets");
        Assert.Contains("truncated", e.Found, StringComparison.Ordinal);
    }

    [Fact]
    public void A_byte_count_that_does_not_match_dtype_and_shape_is_rejected()
    {
        // "c" is F16 x [6] = 12 bytes; as F32 it would need 24.
        var e = Bad(Valid(h => h.Replace("\"F16\"", "\"F32\"", StringComparison.Ordinal)), "data_offsets");
        Assert.Contains("24 bytes", e.Expected, StringComparison.Ordinal);
    }

    [Fact]
    public void Overlapping_tensors_are_rejected() =>
        // b.weight is [0,24) and a.weight [24,36); make a.weight start inside b.weight.
        Bad(Valid(h => h.Replace("\"data_offsets\":[24,36]", "\"data_offsets\":[20,32]", StringComparison.Ordinal)), "data_offsets");

    [Fact]
    public void A_duplicate_tensor_name_is_rejected() =>
        Bad(Valid(h => h.Replace("\"c\":{", "\"a.weight\":{", StringComparison.Ordinal)), "a.weight");

    [Fact]
    public void Metadata_that_is_not_strings_is_rejected() =>
        Bad(Valid(h => h.Replace("\"format\":\"pt\"", "\"format\":1", StringComparison.Ordinal)), "__metadata__");
}

/// <summary>Checkpoint folders: shards and the index must agree.</summary>
public sealed class SafetensorsCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly HfCheckpoints.Spec Tiny = new("Qwen3ForCausalLM", Hidden: 32, Heads: 2, KvHeads: 1, HeadDim: 16, FeedForward: 32,
        Layers: 2, VocabSize: 300, Shards: 2);

    private string Index => Path.Combine(_dir, SafetensorsCheckpoint.IndexFileName);

    private static SafetensorsFormatException Bad(string folder)
    {
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(folder).Dispose());
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void Shards_are_read_in_file_order_with_tensors_by_name()
    {
        HfCheckpoints.WriteWeights(_dir, Tiny);
        using var c = SafetensorsCheckpoint.Open(_dir);
        Assert.Equal(2, c.Files.Count);
        var expected = c.Files.SelectMany(f => f.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal)).ToList();
        Assert.Equal(expected, c.Tensors.Select(t => t.Name));
        Assert.Equal(HfCheckpoints.Tensors(Tiny).Count, c.Tensors.Count);
    }

    [Fact]
    public void A_missing_shard_is_rejected()
    {
        HfCheckpoints.WriteWeights(_dir, Tiny);
        File.Delete(Path.Combine(_dir, "model-00002-of-00002.safetensors"));
        Assert.Contains("model-00002-of-00002.safetensors", Bad(_dir).Found, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tensor_the_index_lists_but_no_shard_holds_is_rejected()
    {
        HfCheckpoints.WriteWeights(_dir, Tiny);
        File.WriteAllText(Index, File.ReadAllText(Index).Replace("\"weight_map\":{", "\"weight_map\":{\"model.extra.weight\":\"model-00001-of-00002.safetensors\",", StringComparison.Ordinal));
        Assert.Contains("model.extra.weight", Bad(_dir).Found, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tensor_the_index_does_not_list_is_rejected()
    {
        HfCheckpoints.WriteWeights(_dir, Tiny);
        File.WriteAllText(Index, File.ReadAllText(Index).Replace("\"model.norm.weight\":\"model-00002-of-00002.safetensors\",", "", StringComparison.Ordinal)
            .Replace(",\"model.norm.weight\":\"model-00002-of-00002.safetensors\"", "", StringComparison.Ordinal));
        Assert.Contains("model.norm.weight", Bad(_dir).Found, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tensor_in_another_shard_than_the_index_says_is_rejected()
    {
        HfCheckpoints.WriteWeights(_dir, Tiny);
        File.WriteAllText(Index, File.ReadAllText(Index).Replace("\"model.norm.weight\":\"model-00002-of-00002.safetensors\"",
            "\"model.norm.weight\":\"model-00001-of-00002.safetensors\"", StringComparison.Ordinal));
        Assert.Contains("model.norm.weight", Bad(_dir).Field, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tensor_in_two_shards_is_rejected()
    {
        var t = ("model.norm.weight", "F32", new long[] { 2 }, new byte[8]);
        HfCheckpoints.WriteSafetensors(Path.Combine(_dir, "model-00001-of-00002.safetensors"), [t]);
        HfCheckpoints.WriteSafetensors(Path.Combine(_dir, "model-00002-of-00002.safetensors"), [t]);
        Assert.Contains("also in", Bad(_dir).Found, StringComparison.Ordinal);
    }

    [Fact]
    public void An_index_that_is_not_json_is_rejected()
    {
        HfCheckpoints.WriteWeights(_dir, Tiny);
        File.WriteAllText(Index, "{\"weight_map\": {");
        Bad(_dir);
    }

    [Fact]
    public void An_index_without_a_weight_map_is_rejected()
    {
        HfCheckpoints.WriteWeights(_dir, Tiny);
        File.WriteAllText(Index, "{\"metadata\": {}}");
        Assert.Equal("weight_map", Bad(_dir).Field);
    }

    [Fact]
    public void An_index_naming_a_file_outside_the_folder_is_rejected()
    {
        HfCheckpoints.WriteWeights(_dir, Tiny);
        File.WriteAllText(Index, "{\"weight_map\": {\"model.norm.weight\": \"../model.safetensors\"}}");
        Assert.Contains("../model.safetensors", Bad(_dir).Found, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_shard_is_rejected()
    {
        HfCheckpoints.WriteWeights(_dir, Tiny);
        string shard = Path.Combine(_dir, "model-00001-of-00002.safetensors");
        var bytes = File.ReadAllBytes(shard);
        File.WriteAllBytes(shard, bytes[..(bytes.Length - 100)]);
        Assert.Contains("truncated", Bad(_dir).Found, StringComparison.Ordinal);
    }

    [Fact]
    public void A_folder_without_weights_is_rejected() =>
        Assert.Throws<InvalidInputException>(() => SafetensorsCheckpoint.Open(_dir));
}
