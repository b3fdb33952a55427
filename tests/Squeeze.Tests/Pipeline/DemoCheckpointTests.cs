using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using Squeeze.Pipeline;
using Xunit;

namespace Squeeze.Tests.Pipeline;

public sealed class DemoCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-demo-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Ships_its_texts()
    {
        Assert.Contains("lighthouse", DemoCheckpoint.CalibrationText);
        Assert.Contains("ferry", DemoCheckpoint.EvaluationText);
    }

    [Fact]
    public void Byte_map_is_a_bijection_onto_visible_characters()
    {
        var map = DemoCheckpoint.ByteToUnicode();
        Assert.Equal(256, map.Distinct().Count());
        Assert.All(map, c => Assert.False(char.IsWhiteSpace(c) || char.IsControl(c), $"U+{(int)c:X4}"));
        Assert.Equal('A', map['A']);
        Assert.Equal('\u0120', map[' ']); // the familiar 'Ġ'
    }

    [Fact]
    public void Trained_merges_build_every_token_from_earlier_ones()
    {
        var (vocab, merges) = DemoCheckpoint.TrainTokenizer(DemoCheckpoint.CalibrationText, 400);
        Assert.Equal(400, vocab.Count);
        Assert.Equal(144, merges.Count);
        Assert.Equal(vocab.Count, vocab.Distinct(StringComparer.Ordinal).Count());
        var known = new HashSet<string>(vocab.Take(256), StringComparer.Ordinal);
        for (int i = 0; i < merges.Count; i++)
        {
            Assert.Contains(merges[i].A, known);
            Assert.Contains(merges[i].B, known);
            Assert.Equal(vocab[256 + i], merges[i].A + merges[i].B);
            known.Add(vocab[256 + i]);
        }
    }

    [Fact]
    public void Writes_a_deterministic_qwen3_checkpoint()
    {
        var a = DemoCheckpoint.Write(Path.Combine(_dir, "a"));
        var b = DemoCheckpoint.Write(Path.Combine(_dir, "b"));
        foreach (var name in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md" })
            Assert.Equal(SHA256.HashData(File.ReadAllBytes(Path.Combine(a, name))), SHA256.HashData(File.ReadAllBytes(Path.Combine(b, name))));

        using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(a, "config.json")));
        Assert.Equal("Qwen3ForCausalLM", config.RootElement.GetProperty("architectures")[0].GetString());
        int vocab = config.RootElement.GetProperty("vocab_size").GetInt32();

        using var tokenizer = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(a, "tokenizer.json")));
        int learned = tokenizer.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject().Count();
        Assert.Equal(vocab, learned + tokenizer.RootElement.GetProperty("added_tokens").GetArrayLength());

        // safetensors: header length, JSON header, tensors back to back covering the rest of the file exactly.
        var bytes = File.ReadAllBytes(Path.Combine(a, "model.safetensors"));
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        long end = 0;
        foreach (var t in header.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__"))
        {
            var offsets = t.Value.GetProperty("data_offsets");
            Assert.Equal(end, offsets[0].GetInt64());
            long elements = t.Value.GetProperty("shape").EnumerateArray().Aggregate(1L, (x, d) => x * d.GetInt64());
            end = offsets[1].GetInt64();
            Assert.Equal(elements * 2, end - offsets[0].GetInt64());
        }
        Assert.Equal(bytes.Length, 8 + headerLength + end);
        Assert.True(header.RootElement.TryGetProperty("lm_head.weight", out _));
    }
}
