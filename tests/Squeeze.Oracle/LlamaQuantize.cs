using System.Runtime.InteropServices;
using System.Text;

namespace Squeeze.Oracle;

/// <summary>
/// llama.cpp's <c>llama_model_quantize</c> as llama-quantize calls it: file type, <c>--pure</c>, threads, importance
/// weights already normalized (a NULL-terminated array) and the metadata overrides llama-quantize adds for them.
/// </summary>
public static unsafe class LlamaQuantize
{
    private static int _backend;

    /// <summary>ggml's <c>GGML_TYPE_COUNT</c> at 815a2a591 (the terminator's type).</summary>
    private const int GgmlTypeCount = 43;

    /// <summary>A metadata override: a string, an integer (which llama.cpp writes as u32), a float or a bool.</summary>
    public sealed record KvOverride(string Key, string? Str = null, long Int = 0, double? Float = null, bool? Bool = null);

    /// <summary>Runs the quantization; returns true on success, false when llama.cpp reports an error.</summary>
    public static bool Run(string input, string output, int fileType, bool pure, int threads,
        IReadOnlyDictionary<string, float[]>? imatrix = null, IReadOnlyList<KvOverride>? overrides = null,
        bool quantizeOutput = true, int? outputTensorType = null, int? tokenEmbeddingType = null, bool allowRequantize = false,
        IReadOnlyList<(string Pattern, int Type)>? tensorTypes = null, IReadOnlyList<int>? pruneLayers = null, bool onlyCopy = false, bool dryRun = false)
    {
        OracleLibrary.EnsureLoaded();
        if (Interlocked.Exchange(ref _backend, 1) == 0) Native.llama_backend_init();
        var p = Native.llama_model_quantize_default_params();
        p.FType = fileType;
        p.Pure = pure ? (byte)1 : (byte)0;
        p.NThread = threads;
        p.QuantizeOutputTensor = quantizeOutput ? (byte)1 : (byte)0;
        p.AllowRequantize = allowRequantize ? (byte)1 : (byte)0;
        p.OnlyCopy = onlyCopy ? (byte)1 : (byte)0;
        p.DryRun = dryRun ? (byte)1 : (byte)0;
        if (outputTensorType is int ot) p.OutputTensorType = ot;
        if (tokenEmbeddingType is int et) p.TokenEmbeddingType = et;

        var pins = new List<GCHandle>();
        try
        {
            if (tensorTypes is { Count: > 0 })
            {
                // llama_model_tensor_override: { const char * pattern; enum ggml_type type; } (16 bytes), NULL-terminated.
                var entries = new long[(tensorTypes.Count + 1) * 2];
                for (int i = 0; i < tensorTypes.Count; i++)
                {
                    pins.Add(GCHandle.Alloc(Encoding.UTF8.GetBytes(tensorTypes[i].Pattern + "\0"), GCHandleType.Pinned));
                    entries[2 * i] = pins[^1].AddrOfPinnedObject();
                    entries[2 * i + 1] = tensorTypes[i].Type;
                }
                entries[^1] = GgmlTypeCount;
                pins.Add(GCHandle.Alloc(entries, GCHandleType.Pinned));
                p.TtOverrides = (void*)pins[^1].AddrOfPinnedObject();
            }
            if (pruneLayers is { Count: > 0 })
            {
                var layers = pruneLayers.Append(-1).ToArray();
                pins.Add(GCHandle.Alloc(layers, GCHandleType.Pinned));
                p.PruneLayers = (int*)pins[^1].AddrOfPinnedObject();
            }
            if (imatrix is not null)
            {
                var entries = new LlamaModelImatrixData[imatrix.Count + 1];
                int i = 0;
                foreach (var (name, data) in imatrix)
                {
                    var nameBytes = Encoding.UTF8.GetBytes(name + "\0");
                    pins.Add(GCHandle.Alloc(nameBytes, GCHandleType.Pinned));
                    pins.Add(GCHandle.Alloc(data, GCHandleType.Pinned));
                    entries[i++] = new LlamaModelImatrixData
                    {
                        Name = (byte*)pins[^2].AddrOfPinnedObject(),
                        Data = (float*)pins[^1].AddrOfPinnedObject(),
                        Size = (nuint)data.Length,
                    };
                }
                pins.Add(GCHandle.Alloc(entries, GCHandleType.Pinned));
                p.Imatrix = (LlamaModelImatrixData*)pins[^1].AddrOfPinnedObject();
            }
            if (overrides is { Count: > 0 })
            {
                var kvs = new LlamaModelKvOverride[overrides.Count + 1];
                for (int i = 0; i < overrides.Count; i++)
                {
                    var o = overrides[i];
                    var key = Encoding.UTF8.GetBytes(o.Key);
                    if (key.Length > 127) throw new ArgumentException($"key '{o.Key}' is too long");
                    fixed (LlamaModelKvOverride* kv = &kvs[i])
                    {
                        key.CopyTo(new Span<byte>(kv->Key, 128));
                        if (o.Float is double f)
                        {
                            kv->Tag = LlamaModelKvOverride.TagFloat;
                            kv->ValF64 = f;
                        }
                        else if (o.Bool is bool b)
                        {
                            kv->Tag = LlamaModelKvOverride.TagBool;
                            kv->ValBool = b ? (byte)1 : (byte)0;
                        }
                        else if (o.Str is not null)
                        {
                            kv->Tag = LlamaModelKvOverride.TagStr;
                            // llama-quantize: strncpy(val_str, s, 127); val_str[127] = 0.
                            var s = Encoding.UTF8.GetBytes(o.Str);
                            s.AsSpan(0, Math.Min(127, s.Length)).CopyTo(new Span<byte>(kv->ValStr, 128));
                        }
                        else
                        {
                            kv->Tag = LlamaModelKvOverride.TagInt;
                            kv->ValI64 = o.Int;
                        }
                    }
                }
                pins.Add(GCHandle.Alloc(kvs, GCHandleType.Pinned));
                p.KvOverrides = (LlamaModelKvOverride*)pins[^1].AddrOfPinnedObject();
            }
            return Native.llama_model_quantize(input, output, &p) == 0;
        }
        finally
        {
            foreach (var h in pins) h.Free();
        }
    }
}
