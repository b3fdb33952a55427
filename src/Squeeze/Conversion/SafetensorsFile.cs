using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;

namespace Squeeze.Conversion;

// safetensors layout (huggingface/safetensors):
//   offset 0   u64 little-endian   N, the byte length of the JSON header
//   offset 8   N bytes             UTF-8 JSON object: name -> {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]},
//                                  plus an optional "__metadata__" object of strings
//   offset 8+N                     the data section; a tensor's bytes are [8+N+begin, 8+N+end), row-major, little-endian

/// <summary>The element types Squeeze reads from safetensors files.</summary>
public enum SafetensorsDType
{
    F32,
    F16,
    BF16,
}

/// <summary>One tensor of a safetensors file. <see cref="Shape"/> is in PyTorch order (slowest dimension first).</summary>
/// <param name="Name">The tensor's name in the checkpoint (<c>model.layers.0.self_attn.q_proj.weight</c>).</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions, slowest first.</param>
/// <param name="DataOffset">Absolute file offset of the first byte.</param>
/// <param name="ByteSize">Bytes of data (element count times element size).</param>
/// <param name="File">The file holding the tensor.</param>
public sealed record SafetensorsTensor(string Name, SafetensorsDType DType, long[] Shape, long DataOffset, long ByteSize, SafetensorsFile File)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Elements of one row (the last dimension; 1 for a scalar).</summary>
    public long RowLength => Shape.Length == 0 ? 1 : Shape[^1];

    /// <summary>Number of rows (all dimensions but the last).</summary>
    public long RowCount => Shape.Length == 0 ? 1 : Shape[..^1].Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape as [a, b, c].</summary>
    public string ShapeText => $"[{string.Join(", ", Shape)}]";
}

/// <summary>
/// One safetensors file, memory-mapped read-only. The header is validated completely when the file is opened:
/// its length against the file, the JSON, every entry's dtype, shape and offsets, byte counts against dtype x shape,
/// data inside the file and no two tensors sharing bytes. Tensor data is exposed as spans over the mapping.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted, as the reference implementation limits it (100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly Dictionary<string, SafetensorsTensor> _byName;
    private bool _disposed;

    private SafetensorsFile(string path, long length)
    {
        Path = path;
        Length = length;
        if (length < 8) Fail(0, "header length", "an 8-byte header length", $"a file of {length} bytes");
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
            (Tensors, Metadata, DataStart) = Parse();
        }
        catch
        {
            Release();
            throw;
        }
        _byName = Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>Bytes in the file.</summary>
    public long Length { get; }

    /// <summary>File offset of the data section (8 + header length).</summary>
    public long DataStart { get; }

    /// <summary>Tensors sorted by name (ordinal), the order the safetensors library and convert_hf_to_gguf.py list them in.</summary>
    public IReadOnlyList<SafetensorsTensor> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> strings (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    /// <exception cref="SafetensorsFormatException">The file is not valid safetensors.</exception>
    public static SafetensorsFile Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new InvalidInputException($"safetensors file not found: {path}");
        return new SafetensorsFile(info.FullName, info.Length);
    }

    /// <summary>The tensor named <paramref name="name"/>, or null.</summary>
    public SafetensorsTensor? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int ElementSize(SafetensorsDType dtype) => dtype == SafetensorsDType.F32 ? 4 : 2;

    /// <summary>The bytes of rows <paramref name="firstRow"/>.. of <paramref name="tensor"/> (row = last dimension).</summary>
    public ReadOnlySpan<byte> GetRows(SafetensorsTensor tensor, long firstRow, int rowCount)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!ReferenceEquals(tensor.File, this)) throw new ArgumentException($"tensor '{tensor.Name}' belongs to another file", nameof(tensor));
        if (firstRow < 0 || rowCount < 0 || firstRow + rowCount > tensor.RowCount)
            throw new ArgumentOutOfRangeException(nameof(firstRow), $"rows {firstRow}..{firstRow + rowCount} of {tensor.RowCount}");
        long rowBytes = tensor.RowLength * ElementSize(tensor.DType);
        return new ReadOnlySpan<byte>(_base + tensor.DataOffset + firstRow * rowBytes, checked((int)(rowBytes * rowCount)));
    }

    /// <summary>Converts rows of <paramref name="tensor"/> to floats (exactly: F16 and BF16 widen without rounding).</summary>
    public void ReadRows(SafetensorsTensor tensor, long firstRow, int rowCount, Span<float> destination)
    {
        var bytes = GetRows(tensor, firstRow, rowCount);
        int n = checked((int)(tensor.RowLength * rowCount));
        if (destination.Length < n) throw new ArgumentException("destination too short", nameof(destination));
        switch (tensor.DType)
        {
            case SafetensorsDType.F32:
                for (int i = 0; i < n; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 * i)..]);
                break;
            case SafetensorsDType.F16:
                for (int i = 0; i < n; i++) destination[i] = Numerics.Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]));
                break;
            case SafetensorsDType.BF16:
                for (int i = 0; i < n; i++) destination[i] = Numerics.Bf16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]));
                break;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Release();
    }

    private void Release()
    {
        if (_view is not null)
        {
            if (_base != null) _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }

    private void Fail(long offset, string field, string expected, string found) =>
        throw new SafetensorsFormatException(Path, offset, field, expected, found);

    private (IReadOnlyList<SafetensorsTensor>, IReadOnlyDictionary<string, string>, long) Parse()
    {
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_base, 8));
        if (headerLength < 2 || headerLength > MaxHeaderBytes)
            Fail(0, "header length", $"2 to {MaxHeaderBytes} bytes", headerLength.ToString());
        if (headerLength > (ulong)(Length - 8))
            Fail(0, "header length", $"at most the {Length - 8} bytes after it (the file is {Length} bytes)", $"{headerLength}: the file is truncated or not safetensors");
        long dataStart = 8 + (long)headerLength;
        long dataLength = Length - dataStart;
        var header = new ReadOnlySpan<byte>(_base + 8, (int)headerLength);

        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(header); }
        catch (DecoderFallbackException e) { Fail(8 + e.Index, "header", "UTF-8 JSON", "bytes that are not UTF-8"); throw; }

        JsonDocument doc;
        try { doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e)
        {
            Fail(8 + (e.BytePositionInLine ?? 0), "header", "a JSON object", $"invalid JSON (line {(e.LineNumber ?? 0) + 1}: {FirstLine(e.Message)})");
            throw;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) Fail(8, "header", "a JSON object", $"a JSON {root.ValueKind.ToString().ToLowerInvariant()}");
            var tensors = new List<SafetensorsTensor>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in root.EnumerateObject())
            {
                string name = entry.Name;
                if (!names.Add(name)) Fail(8, $"tensor '{name}'", "each name once", "a duplicate name");
                if (name == "__metadata__")
                {
                    if (entry.Value.ValueKind != JsonValueKind.Object)
                        Fail(8, "__metadata__", "an object of strings", $"a JSON {Kind(entry.Value)}");
                    foreach (var m in entry.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            Fail(8, $"__metadata__.{m.Name}", "a string", $"a JSON {Kind(m.Value)}");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                tensors.Add(ParseTensor(name, entry.Value, dataStart, dataLength));
            }

            // No two tensors may share bytes (empty tensors take none).
            var byStart = tensors.Where(t => t.ByteSize > 0).OrderBy(t => t.DataOffset).ToList();
            for (int i = 1; i < byStart.Count; i++)
            {
                var a = byStart[i - 1];
                var b = byStart[i];
                if (b.DataOffset < a.DataOffset + a.ByteSize)
                    Fail(b.DataOffset, $"tensor '{b.Name}'.data_offsets", $"data after '{a.Name}' (which ends at data offset {a.DataOffset + a.ByteSize - dataStart})",
                        $"data starting at {b.DataOffset - dataStart}, overlapping it");
            }
            tensors.Sort((x, y) => string.CompareOrdinal(x.Name, y.Name));
            return (tensors, metadata, dataStart);
        }
    }

    private SafetensorsTensor ParseTensor(string name, JsonElement e, long dataStart, long dataLength)
    {
        string field = $"tensor '{name}'";
        if (name.Length == 0) Fail(8, "tensor name", "a non-empty name", "\"\"");
        if (e.ValueKind != JsonValueKind.Object) Fail(8, field, "an object with dtype, shape and data_offsets", $"a JSON {Kind(e)}");
        JsonElement dtypeEl = default, shapeEl = default, offsetsEl = default;
        bool hasDtype = false, hasShape = false, hasOffsets = false;
        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype": dtypeEl = p.Value; hasDtype = true; break;
                case "shape": shapeEl = p.Value; hasShape = true; break;
                case "data_offsets": offsetsEl = p.Value; hasOffsets = true; break;
                // Other fields are ignored, as the reference implementation ignores them.
            }
        }
        if (!hasDtype) Fail(8, $"{field}.dtype", "a dtype", "none");
        if (!hasShape) Fail(8, $"{field}.shape", "a shape", "none");
        if (!hasOffsets) Fail(8, $"{field}.data_offsets", "data_offsets", "none");

        if (dtypeEl.ValueKind != JsonValueKind.String) Fail(8, $"{field}.dtype", "a string", $"a JSON {Kind(dtypeEl)}");
        string dtypeName = dtypeEl.GetString()!;
        SafetensorsDType dtype = default;
        switch (dtypeName)
        {
            case "F32": dtype = SafetensorsDType.F32; break;
            case "F16": dtype = SafetensorsDType.F16; break;
            case "BF16": dtype = SafetensorsDType.BF16; break;
            default: Fail(8, $"{field}.dtype", "F32, F16 or BF16", $"\"{dtypeName}\""); break;
        }

        if (shapeEl.ValueKind != JsonValueKind.Array) Fail(8, $"{field}.shape", "an array of sizes", $"a JSON {Kind(shapeEl)}");
        if (shapeEl.GetArrayLength() > 8) Fail(8, $"{field}.shape", "at most 8 dimensions", $"{shapeEl.GetArrayLength()}");
        var shape = new long[shapeEl.GetArrayLength()];
        long elements = 1;
        int d = 0;
        foreach (var s in shapeEl.EnumerateArray())
        {
            if (s.ValueKind != JsonValueKind.Number || !s.TryGetInt64(out long v) || v < 0)
                Fail(8, $"{field}.shape[{d}]", "a non-negative integer", s.GetRawText());
            shape[d] = s.GetInt64();
            if (elements != 0 && shape[d] > long.MaxValue / 4 / elements)
                Fail(8, $"{field}.shape", "a size below 2^61 elements", $"[{string.Join(", ", shapeEl.EnumerateArray().Select(x => x.GetRawText()))}]");
            elements *= shape[d];
            d++;
        }

        if (offsetsEl.ValueKind != JsonValueKind.Array || offsetsEl.GetArrayLength() != 2)
            Fail(8, $"{field}.data_offsets", "[begin, end]", offsetsEl.GetRawText());
        long begin = 0, end = 0;
        int k = 0;
        foreach (var o in offsetsEl.EnumerateArray())
        {
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out long v) || v < 0)
                Fail(8, $"{field}.data_offsets[{k}]", "a non-negative integer", o.GetRawText());
            if (k == 0) begin = o.GetInt64(); else end = o.GetInt64();
            k++;
        }
        if (end < begin) Fail(8, $"{field}.data_offsets", "begin <= end", $"[{begin}, {end}]");
        if (end > dataLength)
            Fail(dataStart + begin, $"{field}.data_offsets", $"data inside the file's {dataLength}-byte data section",
                $"[{begin}, {end}]: the file is truncated or the offsets are wrong");
        long expectedBytes = elements * ElementSize(dtype);
        if (end - begin != expectedBytes)
            Fail(dataStart + begin, $"{field}.data_offsets", $"{expectedBytes} bytes ({dtypeName} x [{string.Join(", ", shape)}])", $"{end - begin} bytes");
        return new SafetensorsTensor(name, dtype, shape, dataStart + begin, expectedBytes, this);
    }

    private static string Kind(JsonElement e) => e.ValueKind.ToString().ToLowerInvariant();

    private static string FirstLine(string s)
    {
        int i = s.IndexOf('\n');
        return (i < 0 ? s : s[..i]).TrimEnd('.', ' ', '\r');
    }
}
