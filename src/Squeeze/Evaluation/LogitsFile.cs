using System.Buffers.Binary;

namespace Squeeze.Evaluation;

// llama-perplexity's KL-divergence base file (--kl-divergence-base without --kl-divergence; tools/perplexity/perplexity.cpp
// at 815a2a591), little-endian, no padding:
//   field            bytes                      meaning
//   magic            8                          "_logits_"
//   n_ctx            4 (int32)                  tokens per chunk
//   n_vocab          4 (int32)                  vocabulary size
//   n_chunk          4 (int32)                  chunks
//   tokens           4 * n_ctx * n_chunk        the evaluated tokens (as tokenized; BOS substitution is not stored)
//   records          per chunk, n_ctx - 1 - n_ctx/2 records (the scored positions n_ctx/2 .. n_ctx-2), each of
//                    nv = 2*((n_vocab+1)/2) + 4 uint16:
//                      float scale, float min_log_prob (the first 4 uint16), n_vocab uint16 q_i, padding to nv
//                    log p_i ~= scale * q_i + min_log_prob

/// <summary>A KL-divergence base file is not valid: where (byte offset), which field, what was expected and what was found.</summary>
public sealed class LogitsFileException : InvalidInputException
{
    public LogitsFileException(long offset, string field, string expected, string found)
        : base($"invalid logits file at offset {offset}: {field}: expected {expected}, found {found}")
    {
        Offset = offset;
        Field = field;
    }

    /// <summary>Byte offset in the file where the bad field starts.</summary>
    public long Offset { get; }

    /// <summary>The field, e.g. <c>n_vocab</c> or <c>chunk[3].record[17].scale</c>.</summary>
    public string Field { get; }
}

/// <summary>The header of a KL-divergence base file (the tokens are read separately, chunk by chunk).</summary>
/// <param name="ContextSize">n_ctx: tokens per chunk.</param>
/// <param name="VocabSize">n_vocab.</param>
/// <param name="ChunkCount">n_chunk.</param>
public sealed record LogitsFileHeader(int ContextSize, int VocabSize, int ChunkCount)
{
    /// <summary>"_logits_".</summary>
    public static ReadOnlySpan<byte> Magic => "_logits_"u8;

    /// <summary>Bytes before the tokens: magic and three int32.</summary>
    public const int Size = 20;

    /// <summary>Largest context accepted when reading (far beyond any model's; bounds the buffers a file can ask for).</summary>
    public const int MaxContextSize = 1 << 22;

    /// <summary>Largest vocabulary accepted when reading.</summary>
    public const int MaxVocabSize = 1 << 24;

    /// <summary>Scored positions per chunk: n_ctx - 1 - n_ctx/2.</summary>
    public int RecordsPerChunk => ScoredPerChunk(ContextSize);

    /// <summary>uint16 per record: 2*((n_vocab+1)/2) + 4 (two floats, the values, padding to an even count).</summary>
    public int RecordLength => RecordUInt16s(VocabSize);

    /// <summary>Byte offset of the first record.</summary>
    public long RecordsOffset => Size + 4L * ContextSize * ChunkCount;

    /// <summary>The exact length of a file with this header.</summary>
    public long FileLength => checked(RecordsOffset + 2L * RecordLength * RecordsPerChunk * ChunkCount);

    public static int ScoredPerChunk(int contextSize) => contextSize - 1 - contextSize / 2;
    public static int RecordUInt16s(int vocabSize) => 2 * ((vocabSize + 1) / 2) + 4;
}

/// <summary>
/// Writes a KL-divergence base file as llama-perplexity does: header and all tokens first, then each chunk's records
/// as they are computed (nothing is held back, so memory does not depend on the chunk count).
/// </summary>
public sealed class LogitsFileWriter
{
    private readonly Stream _stream;
    private readonly LogitsFileHeader _header;
    private int _chunksWritten;

    /// <summary>Writes the header and the first <c>n_ctx * n_chunk</c> of <paramref name="tokens"/>.</summary>
    public LogitsFileWriter(Stream stream, LogitsFileHeader header, ReadOnlySpan<int> tokens)
    {
        long needed = (long)header.ContextSize * header.ChunkCount;
        if (tokens.Length < needed) throw new ArgumentException($"{tokens.Length} tokens for {header.ChunkCount} chunks of {header.ContextSize}", nameof(tokens));
        _stream = stream;
        _header = header;
        Span<byte> head = stackalloc byte[LogitsFileHeader.Size];
        LogitsFileHeader.Magic.CopyTo(head);
        BinaryPrimitives.WriteInt32LittleEndian(head[8..], header.ContextSize);
        BinaryPrimitives.WriteInt32LittleEndian(head[12..], header.VocabSize);
        BinaryPrimitives.WriteInt32LittleEndian(head[16..], header.ChunkCount);
        stream.Write(head);
        var buffer = new byte[4 * 4096];
        for (long i = 0; i < needed; i += 4096)
        {
            int n = (int)Math.Min(4096, needed - i);
            for (int k = 0; k < n; k++) BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(4 * k), tokens[(int)i + k]);
            stream.Write(buffer, 0, 4 * n);
        }
    }

    public LogitsFileHeader Header => _header;

    /// <summary>Appends one chunk's records (<see cref="LogitsFileHeader.RecordsPerChunk"/> x <see cref="LogitsFileHeader.RecordLength"/> uint16).</summary>
    public void WriteChunk(ReadOnlySpan<ushort> records)
    {
        if (records.Length != _header.RecordsPerChunk * _header.RecordLength)
            throw new ArgumentException($"a chunk has {_header.RecordsPerChunk * _header.RecordLength} values, not {records.Length}", nameof(records));
        if (_chunksWritten >= _header.ChunkCount) throw new InvalidOperationException("all chunks are written");
        if (BitConverter.IsLittleEndian) _stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(records));
        else
        {
            var bytes = new byte[records.Length * 2];
            for (int i = 0; i < records.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), records[i]);
            _stream.Write(bytes);
        }
        _chunksWritten++;
    }

    /// <summary>Chunks written so far.</summary>
    public int ChunksWritten => _chunksWritten;
}

/// <summary>
/// Reads a KL-divergence base file written by llama-perplexity or Squeeze. The header and the file length are validated
/// on opening; tokens are read per chunk (and checked against the vocabulary) and records are streamed chunk by chunk,
/// each record's scale and minimum checked, so memory does not depend on the chunk count.
/// </summary>
public sealed class LogitsFileReader : IDisposable
{
    private readonly FileStream _stream;
    private readonly byte[] _tokenBytes;
    private byte[] _recordBytes = [];
    private int _nextChunk;

    private LogitsFileReader(FileStream stream, LogitsFileHeader header)
    {
        _stream = stream;
        Header = header;
        _tokenBytes = new byte[4 * header.ContextSize];
    }

    public LogitsFileHeader Header { get; }

    /// <summary>Opens <paramref name="path"/> and validates its header and length.</summary>
    /// <exception cref="LogitsFileException">The file is not a valid logits file.</exception>
    public static LogitsFileReader Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        try
        {
            var header = ReadHeader(stream);
            return new LogitsFileReader(stream, header);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private static LogitsFileHeader ReadHeader(FileStream stream)
    {
        long length = stream.Length;
        Span<byte> head = stackalloc byte[LogitsFileHeader.Size];
        int got = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (got < 8 || !head[..8].SequenceEqual(LogitsFileHeader.Magic))
            throw new LogitsFileException(0, "magic", "\"_logits_\"", got < 8 ? $"a file of {length} bytes" : Describe(head[..8]));
        if (got < LogitsFileHeader.Size)
            throw new LogitsFileException(got, "header", $"{LogitsFileHeader.Size} bytes (magic, n_ctx, n_vocab, n_chunk)", $"{length} bytes");
        int nCtx = BinaryPrimitives.ReadInt32LittleEndian(head[8..]);
        int nVocab = BinaryPrimitives.ReadInt32LittleEndian(head[12..]);
        int nChunk = BinaryPrimitives.ReadInt32LittleEndian(head[16..]);
        // n_ctx = 2 would score nothing: at least one scored position per chunk.
        if (nCtx < 3 || nCtx > LogitsFileHeader.MaxContextSize)
            throw new LogitsFileException(8, "n_ctx", $"3 to {LogitsFileHeader.MaxContextSize}", nCtx.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (nVocab < 1 || nVocab > LogitsFileHeader.MaxVocabSize)
            throw new LogitsFileException(12, "n_vocab", $"1 to {LogitsFileHeader.MaxVocabSize}", nVocab.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (nChunk < 1)
            throw new LogitsFileException(16, "n_chunk", "at least 1", nChunk.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var header = new LogitsFileHeader(nCtx, nVocab, nChunk);
        long expected;
        try { expected = header.FileLength; }
        catch (OverflowException) { throw new LogitsFileException(16, "n_chunk", "a size that fits in a file", $"{nChunk} chunks of {nCtx} x {nVocab}"); }
        if (length != expected)
            throw new LogitsFileException(Math.Min(length, expected), "file length",
                $"{expected} bytes for {nChunk} chunks of {nCtx} tokens and {nVocab} logits", $"{length} bytes ({(length < expected ? "truncated" : "trailing bytes")})");
        return header;
    }

    private static string Describe(ReadOnlySpan<byte> bytes)
    {
        bool printable = true;
        foreach (var b in bytes) printable &= b is >= 0x20 and < 0x7f;
        return printable ? $"\"{System.Text.Encoding.ASCII.GetString(bytes)}\"" : Convert.ToHexString(bytes);
    }

    /// <summary>Reads the tokens of chunk <paramref name="chunk"/> into <paramref name="tokens"/> (n_ctx of them), checking each against the vocabulary.</summary>
    public void ReadTokens(int chunk, Span<int> tokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunk);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(chunk, Header.ChunkCount);
        int n = Header.ContextSize;
        long offset = LogitsFileHeader.Size + 4L * n * chunk;
        RandomAccess.Read(_stream.SafeFileHandle, _tokenBytes, offset);
        for (int i = 0; i < n; i++)
        {
            int t = BinaryPrimitives.ReadInt32LittleEndian(_tokenBytes.AsSpan(4 * i));
            if ((uint)t >= (uint)Header.VocabSize)
                throw new LogitsFileException(offset + 4L * i, $"tokens[{(long)chunk * n + i}]", $"a token id below n_vocab {Header.VocabSize}", t.ToString(System.Globalization.CultureInfo.InvariantCulture));
            tokens[i] = t;
        }
    }

    /// <summary>
    /// Reads the next chunk's records into <paramref name="records"/> (<see cref="LogitsFileHeader.RecordsPerChunk"/> x
    /// <see cref="LogitsFileHeader.RecordLength"/> uint16); chunks come in file order. Returns the chunk's index.
    /// </summary>
    public int ReadNextChunk(Span<ushort> records)
    {
        int rows = Header.RecordsPerChunk, nv = Header.RecordLength;
        if (records.Length != rows * nv) throw new ArgumentException($"a chunk has {rows * nv} values, not {records.Length}", nameof(records));
        if (_nextChunk >= Header.ChunkCount) throw new InvalidOperationException("every chunk has been read");
        int chunk = _nextChunk++;
        long offset = Header.RecordsOffset + 2L * rows * nv * chunk;
        if (_recordBytes.Length != 2 * rows * nv) _recordBytes = new byte[2 * rows * nv];
        RandomAccess.Read(_stream.SafeFileHandle, _recordBytes, offset);
        for (int i = 0; i < records.Length; i++) records[i] = BinaryPrimitives.ReadUInt16LittleEndian(_recordBytes.AsSpan(2 * i));
        for (int r = 0; r < rows; r++)
        {
            long at = offset + 2L * nv * r;
            float scale = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadInt32LittleEndian(_recordBytes.AsSpan(2 * nv * r)));
            float min = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadInt32LittleEndian(_recordBytes.AsSpan(2 * nv * r + 4)));
            // scale = (max_l - min_l)/65535 with min_l >= max_l - 16; min_log_prob = min_l - max_l - log(sum) <= 0.
            if (!(scale >= 0 && scale <= 16f / 65535 * 1.001f))
                throw new LogitsFileException(at, $"chunk[{chunk}].record[{r}].scale", "a number from 0 to 16/65535", scale.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            if (!(min <= 0 && float.IsFinite(min)))
                throw new LogitsFileException(at + 4, $"chunk[{chunk}].record[{r}].min_log_prob", "a finite number <= 0", min.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        }
        return chunk;
    }

    public void Dispose() => _stream.Dispose();
}
