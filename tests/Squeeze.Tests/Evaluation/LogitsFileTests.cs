using System.Buffers.Binary;
using Squeeze.Evaluation;
using Squeeze.Models;
using Squeeze.Tokenizers;
using Xunit;

namespace Squeeze.Tests.Evaluation;

/// <summary>The KL-divergence base file: round trip, the encoding's arithmetic, and one test per validation rule.</summary>
public sealed class LogitsFileTests : IDisposable
{
    private const int NCtx = 8, NVocab = 5, NChunk = 2;
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-logits-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A valid file: 2 chunks of 8 tokens, vocabulary 5 (odd: one padding value per record).</summary>
    private static byte[] Valid()
    {
        var rng = new Random(3);
        var tokens = Enumerable.Range(0, NCtx * NChunk).Select(_ => rng.Next(NVocab)).ToArray();
        var header = new LogitsFileHeader(NCtx, NVocab, NChunk);
        var ms = new MemoryStream();
        var writer = new LogitsFileWriter(ms, header, tokens);
        var records = new ushort[header.RecordsPerChunk * header.RecordLength];
        var logits = new float[NVocab];
        for (int c = 0; c < NChunk; c++)
        {
            for (int r = 0; r < header.RecordsPerChunk; r++)
            {
                for (int i = 0; i < NVocab; i++) logits[i] = (float)(rng.NextDouble() * 10 - 5);
                LogProbabilities.Encode(logits, tokens[c * NCtx + NCtx / 2 + r + 1], records.AsSpan(r * header.RecordLength, header.RecordLength));
            }
            writer.WriteChunk(records);
        }
        return ms.ToArray();
    }

    private string Save(byte[] bytes, string name = "base.kl")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private LogitsFileException Rejected(byte[] bytes, bool readAll = true)
    {
        return Assert.Throws<LogitsFileException>(() =>
        {
            using var reader = LogitsFileReader.Open(Save(bytes));
            if (!readAll) return;
            var tokens = new int[NCtx];
            var records = new ushort[reader.Header.RecordsPerChunk * reader.Header.RecordLength];
            for (int c = 0; c < reader.Header.ChunkCount; c++)
            {
                reader.ReadTokens(c, tokens);
                reader.ReadNextChunk(records);
            }
        });
    }

    private static byte[] With(byte[] bytes, int offset, int value)
    {
        var copy = bytes.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static long FirstRecord => LogitsFileHeader.Size + 4L * NCtx * NChunk;

    [Fact]
    public void A_written_file_has_llama_cpps_layout_and_reads_back()
    {
        var bytes = Valid();
        var header = new LogitsFileHeader(NCtx, NVocab, NChunk);
        Assert.Equal(3, header.RecordsPerChunk);          // 8 - 1 - 4
        Assert.Equal(10, header.RecordLength);            // 2*3 + 4
        Assert.Equal(header.FileLength, bytes.Length);
        Assert.Equal("_logits_"u8.ToArray(), bytes[..8]);
        using var reader = LogitsFileReader.Open(Save(bytes));
        Assert.Equal(header, reader.Header);
        var records = new ushort[header.RecordsPerChunk * header.RecordLength];
        Assert.Equal(0, reader.ReadNextChunk(records));
        Assert.Equal(1, reader.ReadNextChunk(records));
        Assert.Throws<InvalidOperationException>(() => reader.ReadNextChunk(records));
    }

    [Fact]
    public void Encoding_keeps_log_probabilities_to_the_uint16_step_and_floors_at_max_minus_16()
    {
        float[] logits = [3f, -1f, 0.5f, -40f, 2.999f];
        var record = new ushort[LogitsFileHeader.RecordUInt16s(logits.Length)];
        double nll = LogProbabilities.Encode(logits, 2, record);
        double lse = Math.Log(logits.Sum(l => Math.Exp(l - 3))) + 3;
        Assert.Equal(lse - 0.5, nll, 1e-5);
        float scale = BitConverter.UInt32BitsToSingle(record[0] | ((uint)record[1] << 16));
        float min = BitConverter.UInt32BitsToSingle(record[2] | ((uint)record[3] << 16));
        Assert.Equal(16f / 65535, scale, 1e-9);
        Assert.Equal(0, record[4 + 3]);                   // below the floor
        Assert.Equal(65535, record[4 + 0]);               // the maximum
        Assert.Equal(0, record[^1]);                      // padding
        for (int i = 0; i < logits.Length; i++)
            if (i != 3) Assert.Equal(logits[i] - lse, scale * record[4 + i] + min, 2e-4);
        // Comparing the same logits with their own record: no divergence, same top token.
        var same = LogProbabilities.Compare(logits, record, 2);
        Assert.True(same.SameTop);
        Assert.True(Math.Abs(same.Kld) < 1e-4, $"KLD {same.Kld}");
        Assert.True(Math.Abs(same.ProbabilityDelta) < 1e-4, $"Δp {same.ProbabilityDelta}");
    }

    [Fact]
    public void A_file_with_another_magic_is_rejected() =>
        Assert.Contains("magic", Rejected([.. "_Logits_"u8, .. Valid()[8..]]).Message);

    [Fact]
    public void A_file_shorter_than_the_magic_is_rejected() =>
        Assert.Equal("magic", Rejected("_log"u8.ToArray()).Field);

    [Fact]
    public void A_truncated_header_is_rejected() =>
        Assert.Equal("header", Rejected(Valid()[..14]).Field);

    [Theory]
    [InlineData(2)]
    [InlineData(-512)]
    [InlineData(1 << 23)]
    public void A_context_size_out_of_range_is_rejected(int nCtx) =>
        Assert.Equal("n_ctx", Rejected(With(Valid(), 8, nCtx)).Field);

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(1 << 25)]
    public void A_vocabulary_size_out_of_range_is_rejected(int nVocab) =>
        Assert.Equal("n_vocab", Rejected(With(Valid(), 12, nVocab)).Field);

    [Fact]
    public void A_chunk_count_below_one_is_rejected() =>
        Assert.Equal("n_chunk", Rejected(With(Valid(), 16, 0)).Field);

    [Fact]
    public void A_chunk_count_that_overflows_is_rejected() =>
        Assert.Equal("n_chunk", Rejected(With(With(With(Valid(), 8, 1 << 22), 12, 1 << 24), 16, int.MaxValue)).Field);

    [Fact]
    public void A_truncated_file_is_rejected()
    {
        var e = Rejected(Valid()[..^1]);
        Assert.Equal("file length", e.Field);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Trailing_bytes_are_rejected()
    {
        var e = Rejected([.. Valid(), 0, 0]);
        Assert.Equal("file length", e.Field);
        Assert.Contains("trailing", e.Message);
    }

    [Fact]
    public void A_token_outside_the_vocabulary_is_rejected()
    {
        var e = Rejected(With(Valid(), LogitsFileHeader.Size + 4 * (NCtx + 3), NVocab));
        Assert.Equal("tokens[11]", e.Field);
        Assert.Equal(LogitsFileHeader.Size + 4 * (NCtx + 3), e.Offset);
    }

    [Theory]
    [InlineData(-1f)]
    [InlineData(float.NaN)]
    [InlineData(1f)]
    public void A_record_with_a_bad_scale_is_rejected(float scale)
    {
        var bytes = Valid();
        int record = 4; // chunk 1, record 1
        long at = FirstRecord + 2L * 10 * record;
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan((int)at), scale);
        var e = Rejected(bytes);
        Assert.Equal("chunk[1].record[1].scale", e.Field);
        Assert.Equal(at, e.Offset);
    }

    [Theory]
    [InlineData(0.5f)]
    [InlineData(float.NegativeInfinity)]
    [InlineData(float.NaN)]
    public void A_record_with_a_bad_minimum_is_rejected(float min)
    {
        var bytes = Valid();
        long at = FirstRecord + 4;
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan((int)at), min);
        Assert.Equal("chunk[0].record[0].min_log_prob", Rejected(bytes).Field);
    }

    [Fact]
    public void A_base_file_for_another_vocabulary_is_rejected_by_the_KL_run()
    {
        using var model = TransformerModel.Load(TestData.StoriesModel);
        var tokenizer = Tokenizer.FromGguf(model.File);
        using var reader = LogitsFileReader.Open(Save(Valid()));
        var e = Assert.Throws<InvalidInputException>(() => KlDivergence.Run(model, tokenizer, reader, new PerplexityOptions { Threads = 1 }, cancellation: TestContext.Current.CancellationToken));
        Assert.Contains("vocabulary of 5", e.Message);
    }

    [Fact]
    public void Exact_percentiles_from_the_spilled_sample_equal_a_sort()
    {
        var rng = new Random(11);
        var values = Enumerable.Range(0, 50_000).Select(i => i % 7 == 0 ? -(float)rng.NextDouble() : (float)(rng.NextDouble() * rng.NextDouble())).ToArray();
        values[5] = 0f;
        values[6] = -0f;
        using var sample = new SpilledSample();
        foreach (var v in values) sample.Add(v);
        var sorted = values.Order().ToArray();
        long[] ranks = [0, 1, 49_999, 25_000, 24_999, 12_345, 49_950, 7];
        var got = sample.Select(ranks);
        for (int i = 0; i < ranks.Length; i++) Assert.Equal(sorted[ranks[i]], got[i]);
    }
}
