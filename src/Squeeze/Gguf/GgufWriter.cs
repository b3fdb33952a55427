using System.Buffers.Binary;
using System.Text;
using Squeeze.IO;
using Squeeze.Quants;

namespace Squeeze.Gguf;

/// <summary>Writes one tensor's data: exactly <see cref="GgufTensorInfo.ByteSize"/> bytes into the stream.</summary>
public delegate void TensorDataSource(Stream destination);

/// <summary>
/// Builds a GGUF file: metadata, then tensor infos, then tensor data, laid out as llama.cpp lays it out
/// (tensors in order, each padded to the alignment; the data section aligned). Tensor bytes come from
/// callbacks invoked one tensor at a time while writing, so a model never has to be held in memory.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly List<(GgufTensorInfo Info, TensorDataSource Source)> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public GgufWriter(uint version = 3)
    {
        if (version is not (2 or 3)) throw new ArgumentOutOfRangeException(nameof(version), version, "GGUF version 2 or 3");
        Version = version;
    }

    public uint Version { get; }

    /// <summary>Metadata in the order it will be written.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata => _metadata;

    /// <summary>Tensor infos with the offsets they will have in the file.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors => _tensors.Select(t => t.Info).ToList();

    /// <summary>The alignment the file will use (<c>general.alignment</c> if set, else 32).</summary>
    public int Alignment
    {
        get
        {
            var v = Find(GgufKeys.General.Alignment);
            if (v is null) return GgufFile.DefaultAlignment;
            // The reader's rule: a file this writer makes must open again.
            if (v.Value is not uint a || a == 0 || (a & (a - 1)) != 0 || a > GgufFile.MaxAlignment)
                throw new InvalidOperationException($"{GgufKeys.General.Alignment} must be a power-of-two u32 up to 2^30, not {v.Type.ShortName()} {v}");
            return (int)a;
        }
    }

    public GgufValue? Find(string key) => _metadata.FirstOrDefault(kv => kv.Key == key).Value;

    /// <summary>Sets <paramref name="key"/>: an existing key keeps its position, a new one is appended.</summary>
    public GgufWriter Set(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (key.Contains('\0')) throw new ArgumentException("a metadata key cannot contain NUL", nameof(key));
        if (_tensors.Count > 0 && key == GgufKeys.General.Alignment)
            throw new InvalidOperationException("set the alignment before adding tensors");
        int i = _metadata.FindIndex(kv => kv.Key == key);
        if (i >= 0) _metadata[i] = new(key, value);
        else _metadata.Add(new(key, value));
        return this;
    }

    /// <summary>Removes <paramref name="key"/>; returns whether it was there.</summary>
    public bool Remove(string key) => _metadata.RemoveAll(kv => kv.Key == key) > 0;

    /// <summary>Adds a tensor whose bytes <paramref name="source"/> will write when the file is written.</summary>
    public GgufTensorInfo AddTensor(string name, GgmlType type, IReadOnlyList<long> shape, TensorDataSource source)
    {
        if (Encoding.UTF8.GetByteCount(name) >= GgufFile.MaxNameBytes)
            throw new ArgumentException($"tensor name '{name}' is {GgufFile.MaxNameBytes} bytes or longer", nameof(name));
        if (name.Contains('\0')) throw new ArgumentException("a tensor name cannot contain NUL", nameof(name));
        if (_names.Contains(name)) throw new ArgumentException($"duplicate tensor name '{name}'", nameof(name));
        long offset = 0;
        if (_tensors.Count > 0)
        {
            var last = _tensors[^1].Info;
            offset = checked(last.Offset + Pad(last.ByteSize, Alignment));
        }
        // gguf.cpp divides by ne[1..3] when it loads a file: a zero there crashes llama.cpp (SIGFPE), so never write one.
        for (int d = 1; d < shape.Count; d++)
            if (shape[d] == 0) throw new ArgumentException($"tensor '{name}': dimension {d} is 0, which llama.cpp cannot load (only ne[0] may be 0)", nameof(shape));
        // Validates the shape and type; nothing is recorded until it has passed.
        var info = new GgufTensorInfo(name, type, shape, offset);
        _names.Add(name);
        _tensors.Add((info, source));
        return info;
    }

    /// <summary>Adds a tensor from bytes held in memory.</summary>
    public GgufTensorInfo AddTensor(string name, GgmlType type, IReadOnlyList<long> shape, ReadOnlyMemory<byte> data) =>
        AddTensor(name, type, shape, s => s.Write(data.Span));

    /// <summary>A writer holding <paramref name="file"/>'s version, metadata and tensors (data read from its mapping when written).</summary>
    public static GgufWriter CopyOf(GgufFile file)
    {
        var writer = new GgufWriter(file.Version);
        foreach (var kv in file.Metadata) writer.Set(kv.Key, kv.Value);
        foreach (var t in file.Tensors) writer.AddTensor(t.Name, t.Type, t.Shape, s => file.CopyTensorTo(t, s));
        return writer;
    }

    /// <summary>Writes the file atomically (temporary file, then rename); returns its size in bytes.</summary>
    public long WriteTo(string path) => AtomicFile.Write(path, WriteTo);

    /// <summary>Writes the file to <paramref name="stream"/>.</summary>
    public void WriteTo(Stream stream)
    {
        int alignment = Alignment;
        var counter = new CountingStream(stream);
        using var w = new BinaryWriter(counter, new UTF8Encoding(false), leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        foreach (var (info, _) in _tensors)
        {
            WriteString(w, info.Name);
            w.Write((uint)info.Shape.Count);
            foreach (var n in info.Shape) w.Write(n);
            w.Write((uint)info.Type);
            w.Write((ulong)info.Offset);
        }
        w.Flush();
        // A file without tensors ends after its metadata (as gguf-py writes it); otherwise the data section is aligned.
        if (_tensors.Count > 0) WritePadding(counter, alignment);
        foreach (var (info, source) in _tensors)
        {
            long start = counter.Written;
            source(counter);
            long written = counter.Written - start;
            if (written != info.ByteSize)
                throw new InvalidOperationException($"tensor '{info.Name}': its data source wrote {written} bytes, expected {info.ByteSize}");
            WritePadding(counter, alignment);
        }
        counter.Flush();
    }

    private static long Pad(long n, int alignment) => (n + alignment - 1) / alignment * alignment;

    private static void WritePadding(CountingStream s, int alignment)
    {
        int pad = (int)(Pad(s.Written, alignment) - s.Written);
        if (pad > 0) s.Write(new byte[pad]);
    }

    // Throws on unpaired surrogates instead of silently writing U+FFFD: the file would not say what the caller meant.
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = StrictUtf8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue value)
    {
        switch (value.Value)
        {
            case GgufArray a: WriteArray(w, a); break;
            case string s: WriteString(w, s); break;
            default: WriteScalar(w, value.Value); break;
        }
    }

    private static void WriteArray(BinaryWriter w, GgufArray a)
    {
        w.Write((uint)a.ElementType);
        w.Write((ulong)a.Count);
        switch (a.Items)
        {
            case string[] strings: foreach (var s in strings) WriteString(w, s); break;
            case GgufArray[] arrays: foreach (var inner in arrays) WriteArray(w, inner); break;
            case bool[] bools: foreach (var b in bools) w.Write(b); break;
            default:
                foreach (var item in a.Items) WriteScalar(w, item!);
                break;
        }
    }

    private static void WriteScalar(BinaryWriter w, object v)
    {
        switch (v)
        {
            case byte x: w.Write(x); break;
            case sbyte x: w.Write(x); break;
            case ushort x: w.Write(x); break;
            case short x: w.Write(x); break;
            case uint x: w.Write(x); break;
            case int x: w.Write(x); break;
            case float x: w.Write(x); break;
            case bool x: w.Write(x); break;
            case ulong x: w.Write(x); break;
            case long x: w.Write(x); break;
            case double x: w.Write(x); break;
            default: throw new InvalidOperationException($"not a GGUF scalar: {v.GetType().Name}");
        }
    }

    /// <summary>Counts bytes so that data sources can be checked and padding computed on any stream.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Written += buffer.Length;
        }
    }
}
