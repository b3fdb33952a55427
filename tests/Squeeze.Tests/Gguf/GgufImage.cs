using System.Buffers.Binary;
using System.Text;
using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Tests.Gguf;

/// <summary>
/// Builds a GGUF byte image by hand, one field at a time, independently of <see cref="GgufWriter"/>. Every field
/// can be given a label; <see cref="At"/> returns where a labelled field starts so that a test can overwrite exactly
/// that field (<see cref="Patch"/>) or cut the file there. <see cref="Boundaries"/> lists where every field starts.
/// </summary>
/// <remarks>
/// The high-level helpers (<see cref="Header"/>, <see cref="Kv"/>, <see cref="TensorInfo"/>) label their fields
/// with the names the reader uses in <see cref="GgufFormatException.Field"/> where that is practical:
/// <c>header.magic</c>, <c>header.version</c>, <c>header.tensor_count</c>, <c>header.metadata_kv_count</c>,
/// <c>kv[i].key</c>, <c>kv[i].type</c>, <c>kv[i].value</c>, <c>t[i].name</c>, <c>t[i].n_dims</c>, <c>t[i].ne[d]</c>,
/// <c>t[i].type</c>, <c>t[i].offset</c>, <c>data</c>, <c>data[i]</c>.
/// </remarks>
public sealed class GgufImage
{
    private readonly MemoryStream _bytes = new();
    private readonly Dictionary<string, long> _labels = new(StringComparer.Ordinal);
    private readonly List<long> _boundaries = [];
    private int _kvs, _tensors;

    /// <summary>Bytes written so far.</summary>
    public long Length => _bytes.Length;

    /// <summary>Offsets where a field starts, in order (includes 0).</summary>
    public IReadOnlyList<long> Boundaries => _boundaries;

    /// <summary>Where the field labelled <paramref name="label"/> starts.</summary>
    public long At(string label) =>
        _labels.TryGetValue(label, out var at) ? at : throw new KeyNotFoundException($"no field labelled '{label}'");

    public byte[] ToArray() => _bytes.ToArray();

    // ---- raw fields ----

    public GgufImage Raw(ReadOnlySpan<byte> bytes, string? label = null)
    {
        Mark(label);
        _bytes.Write(bytes);
        return this;
    }

    public GgufImage U8(byte v, string? label = null) => Raw([v], label);

    public GgufImage U16(ushort v, string? label = null)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        return Raw(b, label);
    }

    public GgufImage U32(uint v, string? label = null)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return Raw(b, label);
    }

    public GgufImage U64(ulong v, string? label = null)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        return Raw(b, label);
    }

    public GgufImage I64(long v, string? label = null) => U64((ulong)v, label);
    public GgufImage F32(float v, string? label = null) => U32(BitConverter.SingleToUInt32Bits(v), label);
    public GgufImage F64(double v, string? label = null) => U64(BitConverter.DoubleToUInt64Bits(v), label);

    /// <summary>A GGUF string: u64 byte length, then the bytes (no NUL).</summary>
    public GgufImage Str(string s, string? label = null) => StrBytes(Encoding.UTF8.GetBytes(s), label);

    /// <summary>A GGUF string made of arbitrary bytes (e.g. invalid UTF-8). The length and the text are two fields.</summary>
    public GgufImage StrBytes(byte[] bytes, string? label = null)
    {
        U64((ulong)bytes.Length, label);
        if (bytes.Length > 0) Raw(bytes, label is null ? null : label + ".text");
        return this;
    }

    /// <summary>Zero bytes up to the next multiple of <paramref name="alignment"/>.</summary>
    public GgufImage Pad(int alignment, string? label = null)
    {
        long pad = (Length + alignment - 1) / alignment * alignment - Length;
        if (pad > 0) Raw(new byte[pad], label);
        return this;
    }

    // ---- structured helpers ----

    /// <summary>Magic "GGUF", version, tensor count, metadata count.</summary>
    public GgufImage Header(long tensorCount, long kvCount, uint version = 3) =>
        Raw("GGUF"u8, "header.magic")
            .U32(version, "header.version")
            .I64(tensorCount, "header.tensor_count")
            .I64(kvCount, "header.metadata_kv_count");

    /// <summary>A key, its type id, then <paramref name="value"/> writing the value's bytes (labelled <c>kv[i].*</c>).</summary>
    public GgufImage Kv(string key, GgufValueType type, Action<GgufImage> value) => Kv(key, (uint)type, value);

    public GgufImage Kv(string key, uint typeId, Action<GgufImage> value)
    {
        int i = _kvs++;
        Str(key, $"kv[{i}].key");
        U32(typeId, $"kv[{i}].type");
        Mark($"kv[{i}].value");
        value(this);
        return this;
    }

    public GgufImage KvU32(string key, uint v) => Kv(key, GgufValueType.UInt32, b => b.U32(v));
    public GgufImage KvString(string key, string v) => Kv(key, GgufValueType.String, b => b.Str(v));

    /// <summary>An array value: element type, count, then the elements written by <paramref name="items"/>.</summary>
    public GgufImage Array(uint elementType, ulong count, Action<GgufImage> items, string? label = null)
    {
        U32(elementType, label is null ? null : label + ".element_type");
        U64(count, label is null ? null : label + ".count");
        items(this);
        return this;
    }

    /// <summary>A tensor info: name, n_dims, the dimensions, the ggml type id, the data offset (labelled <c>t[i].*</c>).</summary>
    public GgufImage TensorInfo(string name, long[] shape, uint typeId, ulong offset) =>
        TensorInfo(Encoding.UTF8.GetBytes(name), shape, typeId, offset);

    public GgufImage TensorInfo(string name, long[] shape, GgmlType type, ulong offset) =>
        TensorInfo(name, shape, (uint)type, offset);

    public GgufImage TensorInfo(byte[] name, long[] shape, uint typeId, ulong offset)
    {
        int i = _tensors++;
        StrBytes(name, $"t[{i}].name");
        U32((uint)shape.Length, $"t[{i}].n_dims");
        for (int d = 0; d < shape.Length; d++) I64(shape[d], $"t[{i}].ne[{d}]");
        U32(typeId, $"t[{i}].type");
        U64(offset, $"t[{i}].offset");
        return this;
    }

    // ---- changes after the fact ----

    /// <summary>Overwrites bytes at <paramref name="offset"/> in a copy of the image.</summary>
    public static byte[] Patch(byte[] image, long offset, ReadOnlySpan<byte> bytes)
    {
        var copy = (byte[])image.Clone();
        bytes.CopyTo(copy.AsSpan((int)offset));
        return copy;
    }

    /// <summary>The image with the field labelled <paramref name="label"/> overwritten by <paramref name="bytes"/>.</summary>
    public byte[] Patch(string label, ReadOnlySpan<byte> bytes) => Patch(ToArray(), At(label), bytes);

    public byte[] PatchU32(string label, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return Patch(label, b);
    }

    public byte[] PatchU64(string label, ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        return Patch(label, b);
    }

    public byte[] PatchI64(string label, long v) => PatchU64(label, (ulong)v);

    private void Mark(string? label)
    {
        if (_boundaries.Count == 0 || _boundaries[^1] != Length) _boundaries.Add(Length);
        if (label is null) return;
        if (!_labels.TryAdd(label, Length))
            throw new InvalidOperationException($"label '{label}' used twice");
    }
}
