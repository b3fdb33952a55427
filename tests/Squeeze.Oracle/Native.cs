using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

[assembly: DisableRuntimeMarshalling]

namespace Squeeze.Oracle;

/// <summary>ggml's <c>ggml_type_traits</c> (ggml.h at 815a2a591).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct GgmlTypeTraitsNative
{
    public byte* TypeName;
    public long BlockSize;
    public long BlockSizeInterleave;
    public nuint TypeSize;
    public byte IsQuantized;
    public delegate* unmanaged<void*, float*, long, void> ToFloat;
    public delegate* unmanaged<float*, void*, long, void> FromFloatRef;
}

/// <summary>ggml-cpu's <c>ggml_type_traits_cpu</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct GgmlTypeTraitsCpuNative
{
    public delegate* unmanaged<float*, void*, long, void> FromFloat;
    /// <summary><c>vec_dot(n, s, bs, x, bx, y, by, nrc)</c>.</summary>
    public delegate* unmanaged<int, float*, nuint, void*, nuint, void*, nuint, int, void> VecDot;
    public int VecDotType;
    public long NRows;
}

/// <summary><c>gguf_init_params</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct GgufInitParams
{
    public byte NoAlloc;
    public nint* Context;
}

/// <summary><c>llama_model_params</c> (llama.h at 815a2a591, 72 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct LlamaModelParams
{
    public nint Devices;
    public nint TensorBuftOverrides;
    public int NGpuLayers;
    public int SplitMode;
    public int LoadMode;
    public int MainGpu;
    public nint TensorSplit;
    public nint ProgressCallback;
    public nint ProgressCallbackUserData;
    public nint KvOverrides;
    public byte VocabOnly;
    public byte CheckTensors;
    public byte UseExtraBufts;
    public byte NoHost;
    public byte NoAlloc;
    public byte LoadMtp;
}

/// <summary><c>llama_context_params</c> (llama.h at 815a2a591, 160 bytes; <c>cb_eval</c> at offset 88).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct LlamaContextParams
{
    public uint NCtx;
    public uint NBatch;
    public uint NUbatch;
    public uint NSeqMax;
    public uint NRsSeq;
    public uint NOutputsMax;
    public int NThreads;
    public int NThreadsBatch;
    public int CtxType;
    public int RopeScalingType;
    public int PoolingType;
    public int AttentionType;
    public int FlashAttnType;
    public float RopeFreqBase;
    public float RopeFreqScale;
    public float YarnExtFactor;
    public float YarnAttnFactor;
    public float YarnBetaFast;
    public float YarnBetaSlow;
    public uint YarnOrigCtx;
    public float DefragThold;
    public nint CbEval;
    public nint CbEvalUserData;
    public int TypeK;
    public int TypeV;
    public nint AbortCallback;
    public nint AbortCallbackData;
    public byte Embeddings;
    public byte OffloadKqv;
    public byte NoPerf;
    public byte OpOffload;
    public byte SwaFull;
    public byte KvUnified;
    public nint Samplers;
    public nuint NSamplers;
    public nint CtxOther;
}

/// <summary><c>ggml_init_params</c> (ggml.h at 815a2a591).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GgmlInitParams
{
    public nuint MemSize;
    public nint MemBuffer;
    public byte NoAlloc;
}

/// <summary><c>llama_batch</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LlamaBatch
{
    public int NTokens;
    public int* Token;
    public float* Embd;
    public int* Pos;
    public int* NSeqId;
    public int** SeqId;
    public sbyte* Logits;
}

/// <summary>
/// Raw entry points of the oracle. Call <see cref="OracleLibrary.EnsureLoaded"/> first.
/// A GGML_ASSERT aborts the process: validate arguments before calling.
/// </summary>
public static unsafe partial class Native
{
    // ggml-base
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial byte* ggml_type_name(int type);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial long ggml_blck_size(int type);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nuint ggml_type_size(int type);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nuint ggml_row_size(int type, long ne);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial GgmlTypeTraitsNative* ggml_get_type_traits(int type);
    [LibraryImport(OracleLibrary.GgmlBase)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool ggml_is_quantized(int type);
    [LibraryImport(OracleLibrary.GgmlBase)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool ggml_quantize_requires_imatrix(int type);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void ggml_quantize_init(int type);
    [LibraryImport(OracleLibrary.GgmlBase)]
    public static partial nuint ggml_quantize_chunk(int type, float* src, void* dst, long start, long nrows, long nPerRow, float* imatrix);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void* ggml_get_tensor(nint ctx, byte* name);
    // ggml-quants.c entry points that ggml-base exports but its type table does not list (Q8_K has neither
    // from_float_ref nor to_float in type_traits at 815a2a591).
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void quantize_row_q8_K_ref(float* x, void* y, long k);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void dequantize_row_q8_K(void* x, float* y, long k);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void ggml_free(nint ctx);

    // gguf (in ggml-base)
    [LibraryImport(OracleLibrary.GgmlBase, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint gguf_init_from_file(string path, GgufInitParams p);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void gguf_free(nint ctx);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial uint gguf_get_version(nint ctx);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nuint gguf_get_alignment(nint ctx);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nuint gguf_get_data_offset(nint ctx);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial long gguf_get_n_kv(nint ctx);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial byte* gguf_get_key(nint ctx, long keyId);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial int gguf_get_kv_type(nint ctx, long keyId);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial int gguf_get_arr_type(nint ctx, long keyId);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nuint gguf_get_arr_n(nint ctx, long keyId);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void* gguf_get_arr_data(nint ctx, long keyId);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial byte* gguf_get_arr_str(nint ctx, long keyId, nuint i);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void* gguf_get_val_data(nint ctx, long keyId);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial byte* gguf_get_val_str(nint ctx, long keyId);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial long gguf_get_n_tensors(nint ctx);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial byte* gguf_get_tensor_name(nint ctx, long tensorId);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial int gguf_get_tensor_type(nint ctx, long tensorId);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nuint gguf_get_tensor_offset(nint ctx, long tensorId);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nuint gguf_get_tensor_size(nint ctx, long tensorId);

    // ggml graphs (for single ops such as flash attention)
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nint ggml_init(GgmlInitParams p);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nint ggml_new_tensor_4d(nint ctx, int type, long ne0, long ne1, long ne2, long ne3);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void* ggml_get_data(nint tensor);
    [LibraryImport(OracleLibrary.GgmlBase)]
    public static partial nint ggml_flash_attn_ext(nint ctx, nint q, nint k, nint v, nint mask, float scale, float maxBias, float logitSoftcap);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nint ggml_mul_mat(nint ctx, nint a, nint b);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nint ggml_swiglu_split(nint ctx, nint a, nint b);
    [LibraryImport(OracleLibrary.GgmlBase)]
    public static partial nint ggml_rope_ext(nint ctx, nint a, nint b, nint c, int nDims, int mode, int nCtxOrig, float freqBase, float freqScale,
        float extFactor, float attnFactor, float betaFast, float betaSlow);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nint ggml_new_graph(nint ctx);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void ggml_build_forward_expand(nint graph, nint tensor);

    // ggml backend buffers (for a weight in ggml-cpu's CPU_REPACK buffer)
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial nint ggml_backend_buft_alloc_buffer(nint buft, nuint size);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void* ggml_backend_buffer_get_base(nint buffer);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void ggml_backend_buffer_free(nint buffer);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial int ggml_backend_tensor_alloc(nint buffer, nint tensor, void* addr);
    [LibraryImport(OracleLibrary.GgmlBase)] public static partial void ggml_backend_tensor_set(nint tensor, void* data, nuint offset, nuint size);

    // ggml-cpu
    /// <summary><c>ggml_backend_cpu_repack_buffer_type()</c>, a C++ symbol of ggml-cpu (declared without extern "C").</summary>
    [LibraryImport(OracleLibrary.GgmlCpu, EntryPoint = "_Z35ggml_backend_cpu_repack_buffer_typev")]
    public static partial nint ggml_backend_cpu_repack_buffer_type();
    [LibraryImport(OracleLibrary.GgmlCpu)] public static partial void ggml_cpu_init();
    [LibraryImport(OracleLibrary.GgmlCpu)] public static partial int ggml_graph_compute_with_ctx(nint ctx, nint graph, int nThreads);
    [LibraryImport(OracleLibrary.GgmlCpu)] public static partial GgmlTypeTraitsCpuNative* ggml_get_type_traits_cpu(int type);

    // llama
    [LibraryImport(OracleLibrary.Llama)] public static partial void llama_backend_init();
    [LibraryImport(OracleLibrary.Llama)] public static partial void llama_log_set(nint callback, nint userData);
    [LibraryImport(OracleLibrary.Llama)] public static partial LlamaModelParams llama_model_default_params();
    [LibraryImport(OracleLibrary.Llama, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint llama_model_load_from_file(string path, LlamaModelParams p);
    [LibraryImport(OracleLibrary.Llama)] public static partial void llama_model_free(nint model);
    [LibraryImport(OracleLibrary.Llama)] public static partial int llama_model_n_layer(nint model);
    [LibraryImport(OracleLibrary.Llama)] public static partial ulong llama_model_n_params(nint model);
    [LibraryImport(OracleLibrary.Llama)] public static partial ulong llama_model_size(nint model);
    [LibraryImport(OracleLibrary.Llama)] public static partial nint llama_model_get_vocab(nint model);

    // llama vocabulary (llama.h at 815a2a591; bool arguments pass as one byte)
    [LibraryImport(OracleLibrary.Llama)] public static partial int llama_vocab_type(nint vocab);
    [LibraryImport(OracleLibrary.Llama)] public static partial int llama_vocab_n_tokens(nint vocab);
    [LibraryImport(OracleLibrary.Llama)] public static partial byte* llama_vocab_get_text(nint vocab, int token);
    [LibraryImport(OracleLibrary.Llama)] public static partial float llama_vocab_get_score(nint vocab, int token);
    [LibraryImport(OracleLibrary.Llama)] public static partial int llama_vocab_get_attr(nint vocab, int token);
    [LibraryImport(OracleLibrary.Llama)] public static partial byte llama_vocab_is_eog(nint vocab, int token);
    [LibraryImport(OracleLibrary.Llama)] public static partial int llama_vocab_bos(nint vocab);
    [LibraryImport(OracleLibrary.Llama)] public static partial int llama_vocab_eos(nint vocab);
    [LibraryImport(OracleLibrary.Llama)] public static partial int llama_vocab_eot(nint vocab);
    [LibraryImport(OracleLibrary.Llama)] public static partial int llama_vocab_sep(nint vocab);
    [LibraryImport(OracleLibrary.Llama)] public static partial int llama_vocab_pad(nint vocab);
    [LibraryImport(OracleLibrary.Llama)] public static partial byte llama_vocab_get_add_bos(nint vocab);
    [LibraryImport(OracleLibrary.Llama)] public static partial byte llama_vocab_get_add_eos(nint vocab);
    [LibraryImport(OracleLibrary.Llama)] public static partial byte llama_vocab_get_add_sep(nint vocab);

    /// <summary>Returns the token count, or minus the count needed when <paramref name="nTokensMax"/> is too small.</summary>
    [LibraryImport(OracleLibrary.Llama)]
    public static partial int llama_tokenize(nint vocab, byte* text, int textLen, int* tokens, int nTokensMax, byte addSpecial, byte parseSpecial);

    /// <summary>Returns the byte count, or minus the size needed when <paramref name="length"/> is too small.</summary>
    [LibraryImport(OracleLibrary.Llama)]
    public static partial int llama_token_to_piece(nint vocab, int token, byte* buf, int length, int lstrip, byte special);

    [LibraryImport(OracleLibrary.Llama)]
    public static partial int llama_detokenize(nint vocab, int* tokens, int nTokens, byte* text, int textLenMax, byte removeSpecial, byte unparseSpecial);

    [LibraryImport(OracleLibrary.Llama)] public static partial LlamaContextParams llama_context_default_params();
    [LibraryImport(OracleLibrary.Llama)] public static partial nint llama_init_from_model(nint model, LlamaContextParams p);
    [LibraryImport(OracleLibrary.Llama)] public static partial void llama_free(nint ctx);
    [LibraryImport(OracleLibrary.Llama)] public static partial uint llama_n_ctx(nint ctx);
    [LibraryImport(OracleLibrary.Llama)] public static partial LlamaBatch llama_batch_init(int nTokens, int embd, int nSeqMax);
    [LibraryImport(OracleLibrary.Llama)] public static partial void llama_batch_free(LlamaBatch batch);
    [LibraryImport(OracleLibrary.Llama)] public static partial int llama_decode(nint ctx, LlamaBatch batch);
    [LibraryImport(OracleLibrary.Llama)] public static partial float* llama_get_logits_ith(nint ctx, int i);
    [LibraryImport(OracleLibrary.Llama)] public static partial nint llama_get_memory(nint ctx);
    [LibraryImport(OracleLibrary.Llama)] public static partial void llama_memory_clear(nint memory, [MarshalAs(UnmanagedType.U1)] bool data);

    public static string? Utf8(byte* s) => s == null ? null : Marshal.PtrToStringUTF8((nint)s);
}
