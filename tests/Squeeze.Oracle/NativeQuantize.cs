using System.Runtime.InteropServices;

namespace Squeeze.Oracle;

/// <summary><c>llama_model_imatrix_data</c> (llama.h at 815a2a591): one entry of a NULL-terminated array.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LlamaModelImatrixData
{
    public byte* Name;
    public float* Data;
    public nuint Size;
}

/// <summary><c>llama_model_tensor_override</c> (llama.h at 815a2a591): a regex and a type; NULL pattern ends the array.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LlamaModelTensorOverride
{
    public byte* Pattern;
    public int Type;
}

/// <summary><c>llama_model_kv_override</c>: tag, <c>char key[128]</c>, then a union (i64, f64, bool, <c>char[128]</c>) at offset 136.</summary>
[StructLayout(LayoutKind.Explicit, Size = 264)]
public unsafe struct LlamaModelKvOverride
{
    public const int TagInt = 0, TagFloat = 1, TagBool = 2, TagStr = 3;

    [FieldOffset(0)] public int Tag;
    [FieldOffset(4)] public fixed byte Key[128];
    [FieldOffset(136)] public long ValI64;
    [FieldOffset(136)] public double ValF64;
    [FieldOffset(136)] public byte ValBool;
    [FieldOffset(136)] public fixed byte ValStr[128];
}

/// <summary><c>llama_model_quantize_params</c> (llama.h at 815a2a591, 56 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LlamaModelQuantizeParams
{
    public int NThread;
    public int FType;
    public int OutputTensorType;
    public int TokenEmbeddingType;
    public byte AllowRequantize;
    public byte QuantizeOutputTensor;
    public byte OnlyCopy;
    public byte Pure;
    public byte KeepSplit;
    public byte DryRun;
    public LlamaModelImatrixData* Imatrix;
    public LlamaModelKvOverride* KvOverrides;
    /// <summary><c>const llama_model_tensor_override *</c> (pattern, type), NULL-terminated.</summary>
    public void* TtOverrides;
    /// <summary>Layer ids to prune, terminated by -1.</summary>
    public int* PruneLayers;
}

public static unsafe partial class Native
{
    [LibraryImport(OracleLibrary.Llama)] public static partial LlamaModelQuantizeParams llama_model_quantize_default_params();

    /// <summary>Returns 0 on success; errors are logged and return 1 (a GGML_ASSERT still aborts).</summary>
    [LibraryImport(OracleLibrary.Llama, StringMarshalling = StringMarshalling.Utf8)]
    public static partial uint llama_model_quantize(string fnameInp, string fnameOut, LlamaModelQuantizeParams* p);
}
