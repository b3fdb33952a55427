using System.Runtime.InteropServices;
using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Oracle;

/// <summary>A tensor as gguf.cpp reads it: <see cref="Ne"/> always has 4 entries (1 past the tensor's own dimensions).</summary>
public sealed record OracleGgufTensor(string Name, GgmlType Type, long[] Ne, long Offset, long Size);

/// <summary>A GGUF file as gguf.cpp's <c>gguf_init_from_file</c> reads it.</summary>
/// <param name="Meta">What gguf.cpp would write for the header, metadata and tensor infos (<c>gguf_get_meta_data</c>).</param>
public sealed record OracleGgufFile(
    uint Version, long Alignment, long DataOffset,
    IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata, IReadOnlyList<OracleGgufTensor> Tensors, byte[] Meta);

/// <summary>llama.cpp's GGUF reader, for comparing with Squeeze's.</summary>
/// <remarks>
/// gguf.cpp aborts the process (GGML_ASSERT) on a <c>general.alignment</c> that is not a u32, and divides by zero on a
/// tensor with a 0 in <c>ne[1..3]</c>: never pass such files. Strings come back as C strings (cut at the first NUL).
/// </remarks>
public static unsafe class OracleGguf
{
    private const int GgufTypeString = 8, GgufTypeArray = 9;

    /// <summary>Offset of <c>ne</c> in <c>struct ggml_tensor</c> (after the type and the buffer pointer).</summary>
    private const int TensorNeOffset = 16;

    /// <summary>Reads <paramref name="path"/> with <c>gguf_init_from_file</c>; null when gguf.cpp rejects it.</summary>
    /// <param name="noAlloc">
    /// true: read the metadata only (as llama.cpp's model loader does). false: also read the data blob, which
    /// rejects files shorter than their padded data section.
    /// </param>
    public static OracleGgufFile? Read(string path, bool noAlloc = true)
    {
        OracleLibrary.EnsureLoaded();
        nint ggml = 0;
        nint ctx = Native.gguf_init_from_file(path, new GgufInitParams { NoAlloc = (byte)(noAlloc ? 1 : 0), Context = &ggml });
        if (ctx == 0) return null;
        try
        {
            var metadata = new List<KeyValuePair<string, GgufValue>>();
            long nKv = Native.gguf_get_n_kv(ctx);
            for (long i = 0; i < nKv; i++)
                metadata.Add(new(Native.Utf8(Native.gguf_get_key(ctx, i))!, Value(ctx, i)));

            var tensors = new List<OracleGgufTensor>();
            long nTensors = Native.gguf_get_n_tensors(ctx);
            for (long i = 0; i < nTensors; i++)
            {
                byte* name = Native.gguf_get_tensor_name(ctx, i);
                byte* tensor = (byte*)Native.ggml_get_tensor(ggml, name);
                if (tensor == null) throw new InvalidOperationException($"ggml context has no tensor '{Native.Utf8(name)}'");
                var ne = new ReadOnlySpan<long>(tensor + TensorNeOffset, 4).ToArray();
                tensors.Add(new(Native.Utf8(name)!, (GgmlType)Native.gguf_get_tensor_type(ctx, i), ne,
                    (long)Native.gguf_get_tensor_offset(ctx, i), (long)Native.gguf_get_tensor_size(ctx, i)));
            }

            var meta = new byte[(long)Native.gguf_get_meta_size(ctx)];
            fixed (byte* p = meta) Native.gguf_get_meta_data(ctx, p);

            return new(Native.gguf_get_version(ctx), (long)Native.gguf_get_alignment(ctx), (long)Native.gguf_get_data_offset(ctx),
                metadata, tensors, meta);
        }
        finally
        {
            Native.gguf_free(ctx);
            if (ggml != 0) Native.ggml_free(ggml);
        }
    }

    private static GgufValue Value(nint ctx, long i)
    {
        int type = Native.gguf_get_kv_type(ctx, i);
        if (type == GgufTypeString) return GgufValue.String(Native.Utf8(Native.gguf_get_val_str(ctx, i))!);
        if (type != GgufTypeArray) return Scalar((GgufValueType)type, (byte*)Native.gguf_get_val_data(ctx, i));

        var elementType = (GgufValueType)Native.gguf_get_arr_type(ctx, i);
        int n = checked((int)Native.gguf_get_arr_n(ctx, i));
        if (elementType == GgufValueType.String)
        {
            var strings = new string[n];
            for (int k = 0; k < n; k++) strings[k] = Native.Utf8(Native.gguf_get_arr_str(ctx, i, (nuint)k))!;
            return GgufValue.Array(GgufArray.Of(strings));
        }
        var items = Array.CreateInstance(GgufArray.ClrType(elementType), n);
        long bytes = (long)n * GgufValueTypes.FixedSize(elementType);
        if (n > 0)
        {
            var handle = GCHandle.Alloc(items, GCHandleType.Pinned);
            try { Buffer.MemoryCopy(Native.gguf_get_arr_data(ctx, i), (void*)handle.AddrOfPinnedObject(), bytes, bytes); }
            finally { handle.Free(); }
        }
        return GgufValue.Array(new GgufArray(elementType, items));
    }

    private static GgufValue Scalar(GgufValueType type, byte* p) => type switch
    {
        GgufValueType.UInt8 => GgufValue.UInt8(*p),
        GgufValueType.Int8 => GgufValue.Int8(*(sbyte*)p),
        GgufValueType.UInt16 => GgufValue.UInt16(*(ushort*)p),
        GgufValueType.Int16 => GgufValue.Int16(*(short*)p),
        GgufValueType.UInt32 => GgufValue.UInt32(*(uint*)p),
        GgufValueType.Int32 => GgufValue.Int32(*(int*)p),
        GgufValueType.Float32 => GgufValue.Float32(*(float*)p),
        GgufValueType.Bool => GgufValue.Bool(*p != 0),
        GgufValueType.UInt64 => GgufValue.UInt64(*(ulong*)p),
        GgufValueType.Int64 => GgufValue.Int64(*(long*)p),
        GgufValueType.Float64 => GgufValue.Float64(*(double*)p),
        _ => throw new InvalidOperationException($"gguf.cpp reported value type {(int)type}"),
    };
}
