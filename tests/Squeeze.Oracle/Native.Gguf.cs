using System.Runtime.InteropServices;

namespace Squeeze.Oracle;

// More of gguf.cpp's API (ggml 815a2a591), kept apart from Native.cs so that GGUF additions do not collide with others.
public static unsafe partial class Native
{
    /// <summary>Bytes gguf.cpp writes for the header, metadata and tensor infos, padded to the alignment.</summary>
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nuint gguf_get_meta_size(nint ctx);

    /// <summary>Writes those <see cref="gguf_get_meta_size"/> bytes to <paramref name="data"/>.</summary>
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void gguf_get_meta_data(nint ctx, void* data);
}
