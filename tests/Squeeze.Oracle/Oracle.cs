using Squeeze.Quants;

namespace Squeeze.Oracle;

/// <summary>Managed helpers over the oracle's entry points, with the argument checks that keep ggml from aborting.</summary>
public static unsafe class Oracle
{
    /// <summary>ggml's quantization of <paramref name="src"/> (<paramref name="nrows"/> rows of <paramref name="nPerRow"/>).</summary>
    /// <param name="type">The ggml type.</param>
    /// <param name="src">Rows of floats.</param>
    /// <param name="nrows">Rows.</param>
    /// <param name="nPerRow">Row length.</param>
    /// <param name="importance">Importance weights (one per column), or empty.</param>
    /// <param name="refuseAborts">Refuse the rows on which ggml's grid searches may abort the process (see
    /// <see cref="OracleRefusedException"/>); pass false only when an independent check says ggml survives them.</param>
    public static byte[] Quantize(GgmlType type, ReadOnlySpan<float> src, int nrows, int nPerRow, ReadOnlySpan<float> importance = default, bool refuseAborts = true)
    {
        var dst = new byte[GgmlTypes.Get(type).RowSize(nPerRow) * nrows];
        Quantize(type, src, dst, nrows, nPerRow, importance, refuseAborts);
        return dst;
    }

    /// <summary>ggml's quantization into <paramref name="dst"/> (for benchmarks: no allocation per call).</summary>
    public static void Quantize(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst, int nrows, int nPerRow, ReadOnlySpan<float> importance = default, bool refuseAborts = true)
    {
        OracleLibrary.EnsureLoaded();
        var traits = GgmlTypes.Get(type);
        if (src.Length != (long)nrows * nPerRow) throw new ArgumentException("src length != nrows * nPerRow");
        if (nPerRow % traits.BlockSize != 0) throw new ArgumentException($"row length {nPerRow} is not a multiple of {traits.BlockSize}");
        if (!importance.IsEmpty && importance.Length != nPerRow) throw new ArgumentException("importance length != nPerRow");
        if (importance.IsEmpty && Native.ggml_quantize_requires_imatrix((int)type))
            throw new ArgumentException($"{traits.Name} requires importance weights");
        if (dst.Length != traits.RowSize(nPerRow) * nrows) throw new ArgumentException("dst length != nrows * row size");
        if (refuseAborts && Iq3SearchAborts(type, src, nPerRow, importance))
            throw new OracleRefusedException($"ggml aborts quantizing these rows to {traits.Name}: squares of the values overflow float, every "
                + "error in its grid search is Inf or NaN and GGML_ASSERT(grid_index >= 0) in iq3_find_best_neighbour fires");
        if (refuseAborts) GuardGridSearchOverflow(type, src, nPerRow);
        fixed (float* s = src)
        fixed (float* w = importance)
        fixed (byte* d = dst)
        {
            nuint written = Native.ggml_quantize_chunk((int)type, s, d, 0, nrows, nPerRow, importance.IsEmpty ? null : w);
            if ((long)written != dst.Length) throw new InvalidOperationException($"ggml wrote {written} bytes, expected {dst.Length}");
        }
    }

    /// <summary>
    /// Whether ggml's IQ3_XXS / IQ3_S quantizer would abort the process: when x*x overflows (or, with importance,
    /// a super-block's sum of squares does) the search weights are Inf, no neighbour has a finite error and
    /// <c>iq3_find_best_neighbour</c> asserts. Conservative: such rows are refused rather than risked.
    /// </summary>
    private static bool Iq3SearchAborts(GgmlType type, ReadOnlySpan<float> src, int nPerRow, ReadOnlySpan<float> importance)
    {
        if (type is not (GgmlType.IQ3_XXS or GgmlType.IQ3_S)) return false;
        for (int b = 0; b + 256 <= src.Length; b += 256)
        {
            float sumx2 = 0;
            for (int i = b; i < b + 256; i++)
            {
                float x2 = src[i] * src[i];
                if (!float.IsFinite(x2)) return true;
                sumx2 += x2;
            }
            if (!importance.IsEmpty && !float.IsFinite(2 * sumx2)) return true;
        }
        return false;
    }

    /// <summary>
    /// The 1- and 2-bit i-quants search a lattice with squared distances weighted by
    /// <c>sqrt(sum(x^2)/256 + x^2)</c>; when a 256-weight block's sum of squares overflows a float those distances
    /// are all Inf/NaN, and ggml then stops the process in a <c>GGML_ASSERT</c> or <c>GGML_ABORT</c> for many such
    /// rows (checked for IQ2_XXS, IQ2_XS, IQ2_S and IQ1_M with Gaussian rows times 1e30). Refuse those inputs here so
    /// that a test fails instead of killing the test host. This is conservative: ggml survives some of them.
    /// </summary>
    private static void GuardGridSearchOverflow(GgmlType type, ReadOnlySpan<float> src, int nPerRow)
    {
        if (type is not (GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ2_S or GgmlType.IQ1_M)) return;
        for (int b = 0; b + 256 <= src.Length; b += 256)
        {
            float sumx2 = 0;
            for (int i = 0; i < 256; i++) sumx2 += src[b + i] * src[b + i];
            if (!float.IsFinite(sumx2))
                throw new OracleRefusedException($"{GgmlTypes.Get(type).Name}: block at {b} has a sum of squares that overflows a float; ggml's grid search may abort the process on it");
        }
    }

    /// <summary>
    /// ggml's <c>to_float</c> of <paramref name="n"/> elements; for Q8_K, whose table row has none, ggml-base's
    /// exported <c>dequantize_row_q8_K</c>.
    /// </summary>
    public static float[] Dequantize(GgmlType type, ReadOnlySpan<byte> src, int n)
    {
        OracleLibrary.EnsureLoaded();
        var traits = GgmlTypes.Get(type);
        if (traits.RowSize(n) != src.Length) throw new ArgumentException("src length does not match n");
        if (!HasDequantize(type)) throw new NotSupportedException($"ggml has no to_float for {traits.Name}");
        var t = Native.ggml_get_type_traits((int)type);
        var dst = new float[n];
        fixed (byte* s = src)
        fixed (float* d = dst)
        {
            if (t->ToFloat != null) t->ToFloat(s, d, n);
            // ggml-base has no to_float for F32 (its rows are floats already); ggml-cpu's F32 from_float,
            // ggml_cpu_fp32_to_fp32, is ggml's own identity conversion, so it stands in.
            else if (type == GgmlType.F32) ((delegate* unmanaged<void*, float*, long, void>)Native.ggml_get_type_traits_cpu((int)type)->FromFloat)(s, d, n);
            else Native.dequantize_row_q8_K(s, d, n);
        }
        return dst;
    }

    /// <summary>Whether ggml can dequantize <paramref name="type"/> (a <c>to_float</c>, Q8_K's exported function, or F32's identity).</summary>
    public static bool HasDequantize(GgmlType type)
    {
        OracleLibrary.EnsureLoaded();
        return Native.ggml_get_type_traits((int)type)->ToFloat != null || type is GgmlType.Q8_K or GgmlType.F32;
    }

    /// <summary>Whether ggml-cpu has a <c>vec_dot</c> for <paramref name="type"/> (the activation formats Q8_1 and Q8_K have none).</summary>
    public static bool HasVecDot(GgmlType type)
    {
        OracleLibrary.EnsureLoaded();
        return Native.ggml_get_type_traits_cpu((int)type)->VecDot != null;
    }

    /// <summary>
    /// ggml-base's reference quantizer of an activation row (<c>from_float_ref</c> in <c>type_traits</c>, e.g.
    /// <c>quantize_row_q8_1_ref</c>); for Q8_K, whose table row has none, the exported <c>quantize_row_q8_K_ref</c>.
    /// </summary>
    public static byte[] FromFloatRef(GgmlType type, ReadOnlySpan<float> src)
    {
        OracleLibrary.EnsureLoaded();
        var traits = GgmlTypes.Get(type);
        if (src.Length % traits.BlockSize != 0) throw new ArgumentException($"row length {src.Length} is not a multiple of {traits.BlockSize}");
        var t = Native.ggml_get_type_traits((int)type);
        if (t->FromFloatRef == null && type != GgmlType.Q8_K) throw new NotSupportedException($"ggml has no from_float_ref for {traits.Name}");
        var dst = new byte[traits.RowSize(src.Length)];
        fixed (float* s = src)
        fixed (byte* d = dst)
        {
            if (t->FromFloatRef != null) t->FromFloatRef(s, d, src.Length);
            else Native.quantize_row_q8_K_ref(s, d, src.Length);
        }
        return dst;
    }

    /// <summary>ggml-cpu's <c>vec_dot</c> of a row of <paramref name="type"/> with a row of its vec-dot type.</summary>
    public static float VecDot(GgmlType type, ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n)
    {
        OracleLibrary.EnsureLoaded();
        var t = Native.ggml_get_type_traits_cpu((int)type);
        if (t->VecDot == null) throw new NotSupportedException($"ggml has no vec_dot for {type}");
        if (GgmlTypes.RowSize(type, n) != x.Length || GgmlTypes.RowSize((GgmlType)t->VecDotType, n) != y.Length)
            throw new ArgumentException("row sizes do not match n");
        float s;
        fixed (byte* px = x)
        fixed (byte* py = y)
            t->VecDot(n, &s, 0, px, 0, py, 0, 1);
        return s;
    }

    /// <summary>The activation type ggml-cpu pairs with <paramref name="type"/> for dot products.</summary>
    public static GgmlType VecDotType(GgmlType type)
    {
        OracleLibrary.EnsureLoaded();
        return (GgmlType)Native.ggml_get_type_traits_cpu((int)type)->VecDotType;
    }

    /// <summary>ggml-cpu's <c>from_float</c> (quantizing an activation row, e.g. to Q8_K).</summary>
    public static byte[] FromFloat(GgmlType type, ReadOnlySpan<float> src)
    {
        OracleLibrary.EnsureLoaded();
        var t = Native.ggml_get_type_traits_cpu((int)type);
        if (t->FromFloat == null) throw new NotSupportedException($"ggml-cpu has no from_float for {type}");
        var dst = new byte[GgmlTypes.RowSize(type, src.Length)];
        fixed (float* s = src)
        fixed (byte* d = dst)
            t->FromFloat(s, d, src.Length);
        return dst;
    }

    /// <summary>
    /// ggml-cpu's <c>ggml_rope_ext</c> on one graph, as llama.cpp rotates Q and K (no YaRN: ext_factor 0, attn_factor 1):
    /// <paramref name="x"/> is <c>[tokens][heads][headDim]</c>, token t at position <paramref name="positions"/>[t];
    /// <paramref name="mode"/> 0 is NORMAL (adjacent pairs), 2 NEOX (halves). Returns the rotated tensor, same layout.
    /// </summary>
    public static float[] Rope(ReadOnlySpan<float> x, ReadOnlySpan<int> positions, int heads, int headDim, int nDims, int mode, float freqBase, float freqScale, int threads)
    {
        int tokens = positions.Length;
        if (tokens <= 0 || heads <= 0 || headDim <= 0 || nDims <= 0 || nDims > headDim || nDims % 2 != 0 || mode is not (0 or 2) || threads <= 0)
            throw new ArgumentException("bad rope shape");
        if (x.Length != tokens * heads * headDim) throw new ArgumentException("array size does not match the shape");
        OracleLibrary.EnsureLoaded();
        Native.ggml_cpu_init();
        long bytes = 4L * x.Length * 3 + 4L * tokens + 16L * 1024 * 1024;
        nint ctx = Native.ggml_init(new GgmlInitParams { MemSize = (nuint)bytes, MemBuffer = 0, NoAlloc = 0 });
        if (ctx == 0) throw new InvalidOperationException("ggml_init failed");
        try
        {
            const int F32 = 0, I32 = 26;
            nint ta = Native.ggml_new_tensor_4d(ctx, F32, headDim, heads, tokens, 1);
            nint tp = Native.ggml_new_tensor_4d(ctx, I32, tokens, 1, 1, 1);
            x.CopyTo(new Span<float>(Native.ggml_get_data(ta), x.Length));
            positions.CopyTo(new Span<int>(Native.ggml_get_data(tp), tokens));
            nint result = Native.ggml_rope_ext(ctx, ta, tp, 0, nDims, mode, 0, freqBase, freqScale, 0f, 1f, 32f, 1f);
            nint graph = Native.ggml_new_graph(ctx);
            Native.ggml_build_forward_expand(graph, result);
            int status = Native.ggml_graph_compute_with_ctx(ctx, graph, threads);
            if (status != 0) throw new InvalidOperationException($"ggml_graph_compute_with_ctx returned {status}");
            return new ReadOnlySpan<float>(Native.ggml_get_data(result), x.Length).ToArray();
        }
        finally
        {
            Native.ggml_free(ctx);
        }
    }

    /// <summary>ggml-cpu's <c>ggml_swiglu_split</c> on one graph (llama.cpp's SwiGLU feed-forward): <c>silu(gate) * up</c> per
    /// row of <paramref name="width"/> elements.</summary>
    public static float[] SwiGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, int width, int threads)
    {
        if (width <= 0 || gate.Length == 0 || gate.Length % width != 0 || up.Length != gate.Length || threads <= 0)
            throw new ArgumentException("bad swiglu shape");
        int rows = gate.Length / width;
        OracleLibrary.EnsureLoaded();
        Native.ggml_cpu_init();
        long bytes = 4L * gate.Length * 4 + 16L * 1024 * 1024;
        nint ctx = Native.ggml_init(new GgmlInitParams { MemSize = (nuint)bytes, MemBuffer = 0, NoAlloc = 0 });
        if (ctx == 0) throw new InvalidOperationException("ggml_init failed");
        try
        {
            const int F32 = 0;
            nint ta = Native.ggml_new_tensor_4d(ctx, F32, width, rows, 1, 1);
            nint tb = Native.ggml_new_tensor_4d(ctx, F32, width, rows, 1, 1);
            gate.CopyTo(new Span<float>(Native.ggml_get_data(ta), gate.Length));
            up.CopyTo(new Span<float>(Native.ggml_get_data(tb), up.Length));
            nint result = Native.ggml_swiglu_split(ctx, ta, tb);
            nint graph = Native.ggml_new_graph(ctx);
            Native.ggml_build_forward_expand(graph, result);
            int status = Native.ggml_graph_compute_with_ctx(ctx, graph, threads);
            if (status != 0) throw new InvalidOperationException($"ggml_graph_compute_with_ctx returned {status}");
            return new ReadOnlySpan<float>(Native.ggml_get_data(result), gate.Length).ToArray();
        }
        finally
        {
            Native.ggml_free(ctx);
        }
    }

    /// <summary>
    /// ggml-cpu's <c>ggml_mul_mat</c> on one graph: <paramref name="weights"/> holds <paramref name="rows"/> rows of
    /// <paramref name="cols"/> elements in <paramref name="type"/>, <paramref name="x"/> holds <paramref name="n"/> f32 rows of
    /// <paramref name="cols"/>. Returns <c>[n][rows]</c>. The weight sits in a plain CPU tensor (never repacked), so the
    /// product takes llamafile's tinyBLAS where ggml-cpu would (n &gt;= 2 and the type and shape it serves), else vec_dot.
    /// </summary>
    public static float[] MatMul(GgmlType type, ReadOnlySpan<byte> weights, int rows, int cols, ReadOnlySpan<float> x, int n, int threads)
    {
        if (rows <= 0 || cols <= 0 || n <= 0 || threads <= 0) throw new ArgumentException("bad matmul shape");
        if (cols % GgmlTypes.Get(type).BlockSize != 0) throw new ArgumentException($"{cols} columns are not whole {type} blocks");
        long rowSize = GgmlTypes.RowSize(type, cols);
        if (weights.Length != rowSize * rows || x.Length != (long)n * cols) throw new ArgumentException("array sizes do not match the shape");
        OracleLibrary.EnsureLoaded();
        Native.ggml_cpu_init();
        long bytes = weights.Length + 4L * x.Length * 3 + 4L * n * rows + 64L * 1024 * 1024;
        nint ctx = Native.ggml_init(new GgmlInitParams { MemSize = (nuint)bytes, MemBuffer = 0, NoAlloc = 0 });
        if (ctx == 0) throw new InvalidOperationException("ggml_init failed");
        try
        {
            const int F32 = 0;
            nint ta = Native.ggml_new_tensor_4d(ctx, (int)type, cols, rows, 1, 1);
            nint tb = Native.ggml_new_tensor_4d(ctx, F32, cols, n, 1, 1);
            weights.CopyTo(new Span<byte>(Native.ggml_get_data(ta), weights.Length));
            x.CopyTo(new Span<float>(Native.ggml_get_data(tb), x.Length));
            nint result = Native.ggml_mul_mat(ctx, ta, tb);
            nint graph = Native.ggml_new_graph(ctx);
            Native.ggml_build_forward_expand(graph, result);
            int status = Native.ggml_graph_compute_with_ctx(ctx, graph, threads);
            if (status != 0) throw new InvalidOperationException($"ggml_graph_compute_with_ctx returned {status}");
            return new ReadOnlySpan<float>(Native.ggml_get_data(result), n * rows).ToArray();
        }
        finally
        {
            Native.ggml_free(ctx);
        }
    }

    /// <summary>
    /// ggml-cpu's <c>ggml_flash_attn_ext</c> on one graph, as llama.cpp runs attention over an F16 cache: f32 queries
    /// <c>[tokens][heads][headDim]</c>, fp16 keys and values <c>[cells][kvHeads][headDim]</c>, and an fp16 mask
    /// <c>[tokens][cells]</c> (0 or -inf bits). Returns <c>[tokens][heads][headDim]</c>.
    /// </summary>
    public static float[] FlashAttention(ReadOnlySpan<float> q, ReadOnlySpan<ushort> k, ReadOnlySpan<ushort> v, ReadOnlySpan<ushort> mask,
        int tokens, int cells, int heads, int kvHeads, int headDim, float scale, int threads)
    {
        if (tokens <= 0 || cells <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || headDim <= 0 || threads <= 0)
            throw new ArgumentException("bad attention shape");
        if (q.Length != tokens * heads * headDim || k.Length != cells * kvHeads * headDim || v.Length != k.Length || mask.Length != tokens * cells)
            throw new ArgumentException("array sizes do not match the shape");
        OracleLibrary.EnsureLoaded();
        Native.ggml_cpu_init();
        long bytes = 4L * q.Length * 2 + 2L * (k.Length + v.Length + mask.Length) + 64L * 1024 * 1024;
        nint ctx = Native.ggml_init(new GgmlInitParams { MemSize = (nuint)bytes, MemBuffer = 0, NoAlloc = 0 });
        if (ctx == 0) throw new InvalidOperationException("ggml_init failed");
        try
        {
            const int F32 = 0, F16 = 1;
            nint tq = Native.ggml_new_tensor_4d(ctx, F32, headDim, tokens, heads, 1);
            nint tk = Native.ggml_new_tensor_4d(ctx, F16, headDim, cells, kvHeads, 1);
            nint tv = Native.ggml_new_tensor_4d(ctx, F16, headDim, cells, kvHeads, 1);
            nint tm = Native.ggml_new_tensor_4d(ctx, F16, cells, tokens, 1, 1);
            float* pq = (float*)Native.ggml_get_data(tq);
            ushort* pk = (ushort*)Native.ggml_get_data(tk), pv = (ushort*)Native.ggml_get_data(tv), pm = (ushort*)Native.ggml_get_data(tm);
            for (int t = 0; t < tokens; t++)
                for (int h = 0; h < heads; h++)
                    q.Slice((t * heads + h) * headDim, headDim).CopyTo(new Span<float>(pq + ((long)h * tokens + t) * headDim, headDim));
            for (int c = 0; c < cells; c++)
                for (int h = 0; h < kvHeads; h++)
                {
                    k.Slice((c * kvHeads + h) * headDim, headDim).CopyTo(new Span<ushort>(pk + ((long)h * cells + c) * headDim, headDim));
                    v.Slice((c * kvHeads + h) * headDim, headDim).CopyTo(new Span<ushort>(pv + ((long)h * cells + c) * headDim, headDim));
                }
            mask.CopyTo(new Span<ushort>(pm, mask.Length));
            nint result = Native.ggml_flash_attn_ext(ctx, tq, tk, tv, tm, scale, 0f, 0f);
            nint graph = Native.ggml_new_graph(ctx);
            Native.ggml_build_forward_expand(graph, result);
            int status = Native.ggml_graph_compute_with_ctx(ctx, graph, threads);
            if (status != 0) throw new InvalidOperationException($"ggml_graph_compute_with_ctx returned {status}");
            return new ReadOnlySpan<float>(Native.ggml_get_data(result), tokens * heads * headDim).ToArray();
        }
        finally
        {
            Native.ggml_free(ctx);
        }
    }

    /// <summary>
    /// ggml-cpu's <c>ggml_mul_mat</c> with the weight in the CPU_REPACK buffer, as llama.cpp multiplies Q4_0, Q4_K, IQ4_NL
    /// and MXFP4 weights (and Q2_K on AVX-512) by default: <paramref name="weight"/> holds <paramref name="rows"/> rows of <paramref name="cols"/>
    /// elements of <paramref name="type"/> (rows a multiple of 8), <paramref name="x"/> <paramref name="n"/> rows of
    /// <paramref name="cols"/> floats. Returns <c>[n][rows]</c>.
    /// </summary>
    public static float[] RepackedMatMul(GgmlType type, ReadOnlySpan<byte> weight, int rows, int cols, ReadOnlySpan<float> x, int n, int threads)
    {
        if (rows <= 0 || rows % 8 != 0 || cols <= 0 || n <= 0 || threads <= 0) throw new ArgumentException("bad matmul shape");
        if (weight.Length != GgmlTypes.RowSize(type, cols) * rows || x.Length != (long)n * cols) throw new ArgumentException("array sizes do not match the shape");
        if (type is not (GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.IQ4_NL or GgmlType.MXFP4 or GgmlType.Q2_K)) throw new OracleRefusedException($"{type} is not repacked on x86");
        OracleLibrary.EnsureLoaded();
        nint wctx = Native.ggml_init(new GgmlInitParams { MemSize = 1024 * 1024, MemBuffer = 0, NoAlloc = 1 });
        long bytes = 4L * x.Length + 4L * n * rows + 2L * weight.Length + 64L * 1024 * 1024;
        nint ctx = Native.ggml_init(new GgmlInitParams { MemSize = (nuint)bytes, MemBuffer = 0, NoAlloc = 0 });
        nint buffer = 0;
        try
        {
            nint tw = Native.ggml_new_tensor_4d(wctx, (int)type, cols, rows, 1, 1);
            buffer = Native.ggml_backend_buft_alloc_buffer(Native.ggml_backend_cpu_repack_buffer_type(), (nuint)weight.Length + 256);
            if (buffer == 0) throw new InvalidOperationException("could not allocate a CPU_REPACK buffer");
            byte* baseAddr = (byte*)Native.ggml_backend_buffer_get_base(buffer);
            byte* aligned = (byte*)(((nint)baseAddr + 63) & ~(nint)63);
            if (Native.ggml_backend_tensor_alloc(buffer, tw, aligned) != 0) throw new InvalidOperationException("ggml_backend_tensor_alloc failed");
            fixed (byte* pw = weight) Native.ggml_backend_tensor_set(tw, pw, 0, (nuint)weight.Length);
            nint tx = Native.ggml_new_tensor_4d(ctx, 0, cols, n, 1, 1);
            x.CopyTo(new Span<float>(Native.ggml_get_data(tx), x.Length));
            nint result = Native.ggml_mul_mat(ctx, tw, tx);
            nint graph = Native.ggml_new_graph(ctx);
            Native.ggml_build_forward_expand(graph, result);
            int status = Native.ggml_graph_compute_with_ctx(ctx, graph, threads);
            if (status != 0) throw new InvalidOperationException($"ggml_graph_compute_with_ctx returned {status}");
            return new ReadOnlySpan<float>(Native.ggml_get_data(result), n * rows).ToArray();
        }
        finally
        {
            if (buffer != 0) Native.ggml_backend_buffer_free(buffer);
            Native.ggml_free(ctx);
            Native.ggml_free(wctx);
        }
    }
}

/// <summary>Thrown instead of calling ggml on inputs it is known to abort the process on.</summary>
public sealed class OracleRefusedException(string message) : Exception(message);
