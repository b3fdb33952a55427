using System.Runtime.InteropServices;

namespace Squeeze.Oracle;

// ggml and gguf.cpp entry points the imatrix tests need (ggml 815a2a591): op names for the eval callback, and the
// gguf.cpp writer llama-imatrix's save_imatrix drives.
public static unsafe partial class Native
{
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial byte* ggml_op_name(int op);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nuint ggml_tensor_overhead();
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nint ggml_new_tensor_2d(nint ctx, int type, long ne0, long ne1);
    [LibraryImport(OracleLibrary.GgmlBase, StringMarshalling = StringMarshalling.Utf8)] public static partial nint ggml_set_name(nint tensor, string name);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nint gguf_init_empty();
    [LibraryImport(OracleLibrary.GgmlBase, StringMarshalling = StringMarshalling.Utf8)] public static partial void gguf_set_val_str(nint ctx, string key, string value);
    [LibraryImport(OracleLibrary.GgmlBase, StringMarshalling = StringMarshalling.Utf8)] public static partial void gguf_set_val_u32(nint ctx, string key, uint value);
    [LibraryImport(OracleLibrary.GgmlBase, StringMarshalling = StringMarshalling.Utf8)] public static partial void gguf_set_arr_str(nint ctx, string key, byte** data, nuint n);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void gguf_add_tensor(nint ctx, nint tensor);
    [LibraryImport(OracleLibrary.GgmlBase, StringMarshalling = StringMarshalling.Utf8)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool gguf_write_to_file(nint ctx, string path, [MarshalAs(UnmanagedType.U1)] bool onlyMeta);
}
