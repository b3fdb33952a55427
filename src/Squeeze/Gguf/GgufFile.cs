using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using Squeeze.Quants;

namespace Squeeze.Gguf;

/// <summary>
/// A GGUF file opened for reading. Metadata and tensor infos are parsed and validated up front;
/// tensor data stays memory-mapped and is exposed as spans over the mapping (no copies).
/// </summary>
/// <remarks>
/// Every check runs before anything is allocated from a count in the file, so a hostile file gets a
/// <see cref="GgufFormatException"/> and never an out-of-memory, overflow or access violation.
/// </remarks>
public sealed unsafe class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Alignment of tensor data when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;

    /// <summary>Most dimensions a tensor may have (ggml's <c>GGML_MAX_DIMS</c>).</summary>
    public const int MaxDimensions = 4;

    /// <summary>Tensor names are shorter than this many bytes (ggml's <c>GGML_MAX_NAME</c>, including the NUL).</summary>
    public const int MaxNameBytes = 64;

    /// <summary>Longest string and largest array gguf.cpp accepts.</summary>
    public const long MaxStringBytes = 1L << 30, MaxArrayElements = 1L << 30;

    /// <summary>Largest <c>general.alignment</c> Squeeze reads or writes (offsets are computed in <see cref="int"/>-sized steps).</summary>
    public const int MaxAlignment = 1 << 30;

    private readonly IDisposable? _owner;
    private readonly byte* _base;
    private readonly Dictionary<string, GgufValue> _metadataByKey;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;
    private bool _disposed;

    private GgufFile(byte* data, long length, IDisposable? owner, string? path)
    {
        _base = data;
        _owner = owner;
        Path = path;
        Length = length;
        var parser = new Parser(data, length);
        try
        {
            (Version, Metadata, Alignment, Tensors, DataOffset) = parser.ParseAll();
        }
        catch
        {
            owner?.Dispose();
            throw;
        }
        _metadataByKey = Metadata.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        _tensorsByName = Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The file's path, when it was opened from one.</summary>
    public string? Path { get; }

    /// <summary>Bytes in the file.</summary>
    public long Length { get; }

    /// <summary>GGUF version (2 or 3).</summary>
    public uint Version { get; }

    /// <summary>Metadata in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Alignment of tensor data (<c>general.alignment</c>, default 32).</summary>
    public int Alignment { get; }

    /// <summary>File offset where the data section starts.</summary>
    public long DataOffset { get; }

    /// <summary>Opens and validates a GGUF file, memory-mapping it read-only.</summary>
    /// <exception cref="GgufFormatException">The bytes are not valid GGUF.</exception>
    public static GgufFile Open(string path)
    {
        // A symbolic link (as in Hugging Face's cache) reports its own length: measure the file it points to.
        var info = new FileInfo(path);
        long length = (info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info).Length;
        if (length < 4)
            throw new GgufFormatException(0, "header.magic", "at least 4 bytes", $"a file of {length} bytes");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var mapping = new Mapping(map);
        return new GgufFile(mapping.Pointer, length, mapping, path);
    }

    /// <summary>Parses a GGUF image held in memory (the bytes are pinned until the file is disposed).</summary>
    public static GgufFile Read(byte[] bytes)
    {
        var handle = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        var pin = new Pin(handle);
        return new GgufFile((byte*)handle.AddrOfPinnedObject(), bytes.Length, pin, null);
    }

    /// <summary>Whether the metadata has <paramref name="key"/>.</summary>
    public bool ContainsKey(string key) => _metadataByKey.ContainsKey(key);

    /// <summary>The value of <paramref name="key"/>, or null when absent.</summary>
    public GgufValue? Find(string key) => _metadataByKey.GetValueOrDefault(key);

    /// <summary>The value of <paramref name="key"/>; throws <see cref="KeyNotFoundException"/> naming it when absent.</summary>
    public GgufValue this[string key] =>
        _metadataByKey.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"metadata key '{key}' is missing");

    /// <summary>The tensor named <paramref name="name"/>, or null.</summary>
    public GgufTensorInfo? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    /// <summary>The architecture (<c>general.architecture</c>), or null.</summary>
    public string? Architecture => Find(GgufKeys.General.Architecture)?.Value as string;

    /// <summary>A pointer to the tensor's first byte in the mapping; valid until the file is disposed.</summary>
    public byte* GetTensorPointer(GgufTensorInfo tensor)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!ReferenceEquals(FindTensor(tensor.Name), tensor))
            throw new ArgumentException($"tensor '{tensor.Name}' does not belong to this file", nameof(tensor));
        return _base + DataOffset + tensor.Offset;
    }

    /// <summary>The tensor's bytes (tensors over 2 GiB: use <see cref="GetRows"/> or the pointer).</summary>
    public ReadOnlySpan<byte> GetTensorBytes(GgufTensorInfo tensor) =>
        new(GetTensorPointer(tensor), checked((int)tensor.ByteSize));

    /// <summary>
    /// The tensor's data as <typeparamref name="T"/> (e.g. <see cref="float"/> for F32, <see cref="Half"/> for F16,
    /// a block struct for a quantized type). The byte size must be a multiple of <c>sizeof(T)</c>.
    /// </summary>
    public ReadOnlySpan<T> GetTensorData<T>(GgufTensorInfo tensor) where T : unmanaged
    {
        if (tensor.ByteSize % sizeof(T) != 0)
            throw new ArgumentException($"tensor '{tensor.Name}' has {tensor.ByteSize} bytes, not a multiple of {typeof(T).Name} ({sizeof(T)} bytes)");
        return new(GetTensorPointer(tensor), checked((int)(tensor.ByteSize / sizeof(T))));
    }

    /// <summary>The bytes of rows <paramref name="firstRow"/> .. <paramref name="firstRow"/>+<paramref name="rowCount"/>-1.</summary>
    public ReadOnlySpan<byte> GetRows(GgufTensorInfo tensor, long firstRow, int rowCount)
    {
        if (firstRow < 0 || rowCount < 0 || firstRow + rowCount > tensor.RowCount)
            throw new ArgumentOutOfRangeException(nameof(firstRow), $"rows {firstRow}..{firstRow + rowCount} of {tensor.RowCount}");
        long rowSize = tensor.RowSize;
        return new(GetTensorPointer(tensor) + firstRow * rowSize, checked((int)(rowSize * rowCount)));
    }

    /// <summary>Writes the tensor's bytes to <paramref name="destination"/> (any size, in chunks).</summary>
    public void CopyTensorTo(GgufTensorInfo tensor, Stream destination)
    {
        byte* p = GetTensorPointer(tensor);
        const int chunk = 1 << 24;
        for (long done = 0; done < tensor.ByteSize; done += chunk)
            destination.Write(new ReadOnlySpan<byte>(p + done, (int)Math.Min(chunk, tensor.ByteSize - done)));
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _owner?.Dispose();
    }

    private sealed class Mapping : IDisposable
    {
        private readonly MemoryMappedFile _file;
        private readonly MemoryMappedViewAccessor _view;

        public Mapping(MemoryMappedFile file)
        {
            _file = file;
            _view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            Pointer = p + _view.PointerOffset;
        }

        public byte* Pointer { get; }

        public void Dispose()
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _file.Dispose();
        }
    }

    private sealed class Pin(GCHandle handle) : IDisposable
    {
        public void Dispose() => handle.Free();
    }

    /// <summary>A bounds-checked cursor over the file's bytes.</summary>
    private struct Parser(byte* data, long length)
    {
        private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);
        private long _pos;

        private readonly long Remaining => length - _pos;

        public (uint, IReadOnlyList<KeyValuePair<string, GgufValue>>, int, IReadOnlyList<GgufTensorInfo>, long) ParseAll()
        {
            uint magic = U32("header.magic");
            if (magic != Magic)
            {
                if (magic == BinaryPrimitives.ReverseEndianness(Magic))
                    Fail(0, "header.magic", "little-endian GGUF", "a big-endian GGUF file, which Squeeze does not read");
                Fail(0, "header.magic", "\"GGUF\"", Describe(magic));
            }
            uint version = U32("header.version");
            if ((version & 0xFFFF) == 0 && version != 0)
                Fail(4, "header.version", "little-endian GGUF", $"version {version:#x}: a big-endian GGUF file, which Squeeze does not read");
            if (version is not (2 or 3))
                Fail(4, "header.version", "2 or 3", version.ToString());

            long tensorCountAt = _pos;
            long tensorCount = I64("header.tensor_count");
            long kvCountAt = _pos;
            long kvCount = I64("header.metadata_kv_count");
            // Each key-value needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info 8 + 4 + 8 + 4 + 8.
            if (tensorCount < 0 || tensorCount > Remaining / 32)
                Fail(tensorCountAt, "header.tensor_count", $"0 to {Remaining / 32} (what the file's size could hold)", tensorCount.ToString());
            if (kvCount < 0 || kvCount > Remaining / 13)
                Fail(kvCountAt, "header.metadata_kv_count", $"0 to {Remaining / 13} (what the file's size could hold)", kvCount.ToString());

            // Counts only bound the loops; lists grow as entries are actually read, so a count that the file's
            // size allows but its contents do not cannot make the reader reserve memory it will never use.
            var metadata = new List<KeyValuePair<string, GgufValue>>((int)Math.Min(kvCount, 1024));
            var keys = new HashSet<string>(StringComparer.Ordinal);
            long alignmentAt = -1;
            for (long i = 0; i < kvCount; i++)
            {
                long keyAt = _pos;
                string key = String($"metadata[{i}].key");
                if (key.Length == 0) Fail(keyAt, $"metadata[{i}].key", "a non-empty key", "an empty string");
                // gguf.cpp looks keys up as C strings: "general.alignment\0x" would be general.alignment to it.
                if (key.Contains('\0')) Fail(keyAt, $"metadata[{i}].key", "a key without NUL bytes", $"'{key.Replace("\0", "\\0")}'");
                if (!keys.Add(key)) Fail(keyAt, $"metadata[{i}].key", "a key not seen before", $"duplicate key '{key}'");
                long typeAt = _pos;
                var type = ValueType($"metadata '{key}'.type", typeAt);
                if (key == GgufKeys.General.Alignment) alignmentAt = typeAt;
                metadata.Add(new(key, Value(type, $"metadata '{key}'", depth: 0)));
            }

            int alignment = DefaultAlignment;
            if (metadata.FirstOrDefault(kv => kv.Key == GgufKeys.General.Alignment).Value is { } alignValue)
            {
                if (alignValue.Type != GgufValueType.UInt32)
                    Fail(alignmentAt, GgufKeys.General.Alignment, "type u32", alignValue.Type.ShortName());
                uint a = (uint)alignValue.Value;
                if (a == 0 || (a & (a - 1)) != 0 || a > MaxAlignment)
                    Fail(alignmentAt + 4, GgufKeys.General.Alignment, "a power of two up to 2^30", a.ToString());
                alignment = (int)a;
            }

            var tensors = new List<GgufTensorInfo>((int)Math.Min(tensorCount, 1024));
            var names = new HashSet<string>(StringComparer.Ordinal);
            var offsets = new List<long>(tensors.Capacity);
            for (long i = 0; i < tensorCount; i++)
            {
                long nameAt = _pos;
                string name = String($"tensor[{i}].name");
                int nameBytes = Encoding.UTF8.GetByteCount(name);
                if (nameBytes >= MaxNameBytes)
                    Fail(nameAt, $"tensor[{i}].name", $"fewer than {MaxNameBytes} bytes", $"{nameBytes} bytes ('{name}')");
                // ggml keeps tensor names as C strings: a NUL would cut the name short (and could make two names equal).
                if (name.Contains('\0'))
                    Fail(nameAt, $"tensor[{i}].name", "a name without NUL bytes", $"'{name.Replace("\0", "\\0")}'");
                if (!names.Add(name)) Fail(nameAt, $"tensor[{i}].name", "a name not seen before", $"duplicate tensor name '{name}'");
                string field = $"tensor '{name}'";

                long dimsAt = _pos;
                uint nDims = U32($"{field}.n_dims");
                if (nDims is < 1 or > MaxDimensions)
                    Fail(dimsAt, $"{field}.n_dims", $"1 to {MaxDimensions}", nDims.ToString());
                var shape = new long[nDims];
                long elements = 1;
                long rowLengthAt = _pos;
                for (int d = 0; d < nDims; d++)
                {
                    long dimAt = _pos;
                    shape[d] = I64($"{field}.ne[{d}]");
                    if (shape[d] < 0) Fail(dimAt, $"{field}.ne[{d}]", "a non-negative size", shape[d].ToString());
                    // gguf.cpp divides by ne[1..3] while loading: a 0 there crashes llama.cpp, so no such file is usable.
                    if (d > 0 && shape[d] == 0) Fail(dimAt, $"{field}.ne[{d}]", "a positive size (only ne[0] may be 0)", "0");
                    if (elements != 0 && shape[d] > long.MaxValue / elements)
                        Fail(dimAt, $"{field}.shape", "an element count below 2^63", $"[{string.Join(", ", shape.Take(d + 1))}, ...]");
                    elements *= shape[d];
                }

                long typeAt = _pos;
                uint typeId = U32($"{field}.type");
                if (!GgmlTypes.IsDefined(typeId))
                    Fail(typeAt, $"{field}.type", "a ggml type id", $"{typeId}, which is not a type");
                var type = (GgmlType)typeId;
                var traits = GgmlTypes.Get(type);
                if (shape[0] % traits.BlockSize != 0)
                    Fail(rowLengthAt, $"{field}.ne[0]", $"a multiple of {traits.Name}'s block size {traits.BlockSize}", shape[0].ToString());
                // A row's size must be representable too: with a zero dimension the element count is 0 whatever ne[0] is.
                if (Math.Max(elements, shape[0]) / traits.BlockSize > long.MaxValue / traits.TypeSize)
                    Fail(typeAt, $"{field}.size", "a byte size below 2^63", $"{elements} elements of {traits.Name}");

                long offsetAt = _pos;
                ulong offset = U64($"{field}.offset");
                if (offset % (ulong)alignment != 0)
                    Fail(offsetAt, $"{field}.offset", $"a multiple of the alignment {alignment}", offset.ToString());
                if (offset > (ulong)length)
                    Fail(offsetAt, $"{field}.offset", $"an offset inside the file ({length} bytes)", offset.ToString());
                offsets.Add(offsetAt);
                tensors.Add(new GgufTensorInfo(name, type, shape, (long)offset));
            }

            long dataOffset = _pos;
            if (tensorCount > 0)
            {
                dataOffset = (_pos + alignment - 1) / alignment * alignment;
                if (dataOffset > length)
                    Fail(_pos, "data section", $"the data section to start at offset {dataOffset}", $"a file of {length} bytes");
            }

            // Tensor data must lie inside the file and no two tensors may share bytes.
            var order = Enumerable.Range(0, tensors.Count).OrderBy(i => tensors[i].Offset).ToArray();
            long previousEnd = 0;
            string? previousName = null;
            foreach (int i in order)
            {
                var t = tensors[i];
                long end = dataOffset + t.Offset + t.ByteSize;
                if (t.ByteSize > length || end > length || end < 0)
                    Fail(offsets[i], $"tensor '{t.Name}'.offset", $"{t.ByteSize} bytes of data inside the file ({length} bytes)",
                        $"data from offset {dataOffset + t.Offset} to {(end < 0 ? "beyond 2^63" : end.ToString())}");
                if (t.Offset < previousEnd && t.ByteSize > 0)
                    Fail(offsets[i], $"tensor '{t.Name}'.offset", $"data after tensor '{previousName}' (which ends at {previousEnd})",
                        $"data starting at {t.Offset}, overlapping it");
                if (t.ByteSize > 0) { previousEnd = t.Offset + t.ByteSize; previousName = t.Name; }
            }

            return (version, metadata, alignment, tensors, dataOffset);
        }

        private GgufValueType ValueType(string field, long at)
        {
            uint id = U32(field);
            if (!GgufValueTypes.IsDefined(id)) Fail(at, field, "a GGUF value type (0 to 12)", id.ToString());
            return (GgufValueType)id;
        }

        private GgufValue Value(GgufValueType type, string field, int depth) => type switch
        {
            GgufValueType.UInt8 => GgufValue.UInt8(Fixed(1, field)[0]),
            GgufValueType.Int8 => GgufValue.Int8((sbyte)Fixed(1, field)[0]),
            GgufValueType.UInt16 => GgufValue.UInt16(BinaryPrimitives.ReadUInt16LittleEndian(Fixed(2, field))),
            GgufValueType.Int16 => GgufValue.Int16(BinaryPrimitives.ReadInt16LittleEndian(Fixed(2, field))),
            GgufValueType.UInt32 => GgufValue.UInt32(U32(field)),
            GgufValueType.Int32 => GgufValue.Int32((int)U32(field)),
            GgufValueType.Float32 => GgufValue.Float32(BinaryPrimitives.ReadSingleLittleEndian(Fixed(4, field))),
            GgufValueType.Bool => GgufValue.Bool(Bool(field)),
            GgufValueType.String => GgufValue.String(String(field)),
            GgufValueType.UInt64 => GgufValue.UInt64(U64(field)),
            GgufValueType.Int64 => GgufValue.Int64(I64(field)),
            GgufValueType.Float64 => GgufValue.Float64(BinaryPrimitives.ReadDoubleLittleEndian(Fixed(8, field))),
            GgufValueType.Array => GgufValue.Array(Array(field, depth)),
            _ => throw new InvalidOperationException("unreachable"),
        };

        private GgufArray Array(string field, int depth)
        {
            long typeAt = _pos;
            var elementType = ValueType($"{field}.element_type", typeAt);
            long countAt = _pos;
            ulong count = U64($"{field}.count");
            long min = GgufValueTypes.MinimumSize(elementType);
            if (count > MaxArrayElements || (long)count > Remaining / Math.Max(1, min))
                Fail(countAt, $"{field}.count", $"at most {Math.Min(MaxArrayElements, Remaining / Math.Max(1, min))} elements (what the file could hold)", count.ToString());
            if (elementType == GgufValueType.Array && depth >= 8)
                Fail(typeAt, $"{field}.element_type", "arrays nested at most 8 deep", "a deeper array");
            int n = (int)count;
            System.Array items;
            switch (elementType)
            {
                case GgufValueType.String:
                {
                    var strings = new string[n];
                    for (int i = 0; i < n; i++) strings[i] = String($"{field}[{i}]");
                    items = strings;
                    break;
                }
                case GgufValueType.Array:
                {
                    var arrays = new GgufArray[n];
                    for (int i = 0; i < n; i++) arrays[i] = Array($"{field}[{i}]", depth + 1);
                    items = arrays;
                    break;
                }
                case GgufValueType.Bool:
                {
                    var bools = new bool[n];
                    for (int i = 0; i < n; i++) bools[i] = Bool($"{field}[{i}]");
                    items = bools;
                    break;
                }
                default:
                {
                    // n * size is at most the bytes left (checked above), but may exceed what a span can hold.
                    long bytes = n * (long)GgufValueTypes.FixedSize(elementType);
                    byte* src = Take(bytes, field);
                    items = System.Array.CreateInstance(GgufArray.ClrType(elementType), n);
                    // Little-endian host: the file's bytes are the array's bytes.
                    if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Squeeze needs a little-endian CPU");
                    var handle = GCHandle.Alloc(items, GCHandleType.Pinned);
                    try { Buffer.MemoryCopy(src, (void*)handle.AddrOfPinnedObject(), bytes, bytes); }
                    finally { handle.Free(); }
                    break;
                }
            }
            return new GgufArray(elementType, items);
        }

        private bool Bool(string field)
        {
            long at = _pos;
            byte b = Fixed(1, field)[0];
            if (b > 1) Fail(at, field, "a bool (0 or 1)", b.ToString());
            return b == 1;
        }

        private string String(string field)
        {
            long at = _pos;
            ulong n = U64($"{field}.length");
            if (n > (ulong)Remaining || n > MaxStringBytes)
                Fail(at, $"{field}.length", $"at most {Math.Min(Remaining, MaxStringBytes)} bytes (what the file holds after it)", n.ToString());
            long textAt = _pos;
            var bytes = Fixed((int)n, field);
            try { return StrictUtf8.GetString(bytes); }
            catch (DecoderFallbackException) { Fail(textAt, field, "UTF-8 text", "bytes that are not valid UTF-8"); return ""; }
        }

        private uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Fixed(4, field));
        private ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Fixed(8, field));
        private long I64(string field) => BinaryPrimitives.ReadInt64LittleEndian(Fixed(8, field));

        private ReadOnlySpan<byte> Fixed(int n, string field) => new(Take(n, field), n);

        /// <summary>The next <paramref name="n"/> bytes; fails at the field's start when the file ends first.</summary>
        private byte* Take(long n, string field)
        {
            if (n > Remaining)
                Fail(_pos, field, $"{n} more bytes", $"the end of the file after {Remaining}");
            byte* p = data + _pos;
            _pos += n;
            return p;
        }

        private static string Describe(uint magic)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, magic);
            bool printable = true;
            foreach (var c in b) printable &= c is >= 0x20 and < 0x7F;
            return printable ? $"\"{Encoding.ASCII.GetString(b)}\"" : $"bytes {Convert.ToHexString(b)}";
        }

        [System.Diagnostics.CodeAnalysis.DoesNotReturn]
        private static void Fail(long offset, string field, string expected, string found) =>
            throw new GgufFormatException(offset, field, expected, found);
    }
}
