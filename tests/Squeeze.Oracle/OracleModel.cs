namespace Squeeze.Oracle;

/// <summary>A model and context in llama.cpp, for comparing logits and generations with Squeeze's.</summary>
public sealed unsafe class OracleModel : IDisposable
{
    private readonly nint _model, _ctx;

    /// <param name="path">GGUF model file.</param>
    /// <param name="contextSize">Context cells.</param>
    /// <param name="batchSize">Largest batch passed to <see cref="Decode"/>.</param>
    /// <param name="threads">CPU threads.</param>
    /// <param name="flashAttention">llama.cpp's flash-attention setting: -1 auto (its default), 0 off, 1 on.</param>
    /// <param name="sequences">n_seq_max: parallel sequences (each gets contextSize / sequences cells, as llama-perplexity sets it up).</param>
    /// <param name="evalCallback">The scheduler's eval callback (<c>cb_eval</c>, as llama-imatrix installs it), or 0.</param>
    /// <param name="evalUserData">Its user data.</param>
    /// <param name="extraBuffers">llama.cpp's <c>use_extra_bufts</c> (default on): weights ggml-cpu can repack (Q4_0, Q4_K,
    /// IQ4_NL, ... with rows a multiple of 8) go to the CPU_REPACK buffer and multiply through its interleaved kernels.
    /// Off only to diagnose; comparisons use llama.cpp's default.</param>
    public OracleModel(string path, int contextSize, int batchSize, int threads = 2, int flashAttention = -1, int sequences = 1,
        nint evalCallback = 0, nint evalUserData = 0, bool extraBuffers = true)
    {
        OracleLibrary.EnsureLoaded();
        Native.llama_backend_init();
        var mp = Native.llama_model_default_params();
        mp.UseExtraBufts = (byte)(extraBuffers ? 1 : 0);
        _model = Native.llama_model_load_from_file(path, mp);
        if (_model == 0) throw new InvalidOperationException($"llama.cpp could not load {path}");
        var cp = Native.llama_context_default_params();
        cp.NCtx = (uint)contextSize;
        cp.NBatch = (uint)batchSize;
        cp.NUbatch = (uint)batchSize;
        cp.NSeqMax = (uint)sequences;
        cp.NThreads = threads;
        cp.NThreadsBatch = threads;
        cp.NoPerf = 1;
        cp.FlashAttnType = flashAttention;
        cp.CbEval = evalCallback;
        cp.CbEvalUserData = evalUserData;
        _ctx = Native.llama_init_from_model(_model, cp);
        if (_ctx == 0)
        {
            Native.llama_model_free(_model);
            throw new InvalidOperationException("llama.cpp could not create a context");
        }
        VocabSize = Native.llama_vocab_n_tokens(Native.llama_model_get_vocab(_model));
    }

    public int VocabSize { get; }

    /// <summary>The context's cells as llama.cpp settled them (<c>llama_n_ctx</c>: the size asked for, rounded up to 256).</summary>
    public int ContextCells => (int)Native.llama_n_ctx(_ctx);

    /// <summary>Loads <paramref name="path"/> with <c>llama_model_load_from_file</c> (CPU) and frees it again: layers,
    /// parameters and bytes as llama.cpp counts them, or null when llama.cpp refuses the file.</summary>
    public static (int Layers, ulong Parameters, ulong Bytes)? Probe(string path)
    {
        OracleLibrary.EnsureLoaded();
        Native.llama_backend_init();
        var p = Native.llama_model_default_params();
        p.NGpuLayers = 0;
        nint model = Native.llama_model_load_from_file(path, p);
        if (model == 0) return null;
        try { return (Native.llama_model_n_layer(model), Native.llama_model_n_params(model), Native.llama_model_size(model)); }
        finally { Native.llama_model_free(model); }
    }

    public void ClearCache() => Native.llama_memory_clear(Native.llama_get_memory(_ctx), true);

    /// <summary>Decodes tokens at positions <paramref name="startPosition"/>.. in sequence 0; returns logits of every token when
    /// <paramref name="allLogits"/>, else of the last (rows of n_vocab).</summary>
    public float[] Decode(IReadOnlyList<int> tokens, int startPosition, bool allLogits)
    {
        var batch = Native.llama_batch_init(tokens.Count, 0, 1);
        try
        {
            batch.NTokens = tokens.Count;
            for (int i = 0; i < tokens.Count; i++)
            {
                batch.Token[i] = tokens[i];
                batch.Pos[i] = startPosition + i;
                batch.NSeqId[i] = 1;
                batch.SeqId[i][0] = 0;
                batch.Logits[i] = (sbyte)(allLogits || i == tokens.Count - 1 ? 1 : 0);
            }
            int rc = Native.llama_decode(_ctx, batch);
            if (rc != 0) throw new InvalidOperationException($"llama_decode returned {rc}");
            int rows = allLogits ? tokens.Count : 1;
            var logits = new float[rows * VocabSize];
            for (int r = 0; r < rows; r++)
            {
                float* p = Native.llama_get_logits_ith(_ctx, allLogits ? r : tokens.Count - 1);
                new ReadOnlySpan<float>(p, VocabSize).CopyTo(logits.AsSpan(r * VocabSize, VocabSize));
            }
            return logits;
        }
        finally
        {
            Native.llama_batch_free(batch);
        }
    }

    /// <summary>Decodes a batch of any sequences and positions; returns the logits of the tokens marked Output, in batch order.</summary>
    public float[] Decode(ReadOnlySpan<Squeeze.Models.BatchToken> tokens)
    {
        var batch = Native.llama_batch_init(tokens.Length, 0, 1);
        try
        {
            batch.NTokens = tokens.Length;
            int outputs = 0;
            for (int i = 0; i < tokens.Length; i++)
            {
                batch.Token[i] = tokens[i].Token;
                batch.Pos[i] = tokens[i].Position;
                batch.NSeqId[i] = 1;
                batch.SeqId[i][0] = tokens[i].Sequence;
                batch.Logits[i] = (sbyte)(tokens[i].Output ? 1 : 0);
                if (tokens[i].Output) outputs++;
            }
            int rc = Native.llama_decode(_ctx, batch);
            if (rc != 0) throw new InvalidOperationException($"llama_decode returned {rc}");
            var logits = new float[(long)outputs * VocabSize];
            int row = 0;
            for (int i = 0; i < tokens.Length; i++)
            {
                if (!tokens[i].Output) continue;
                float* p = Native.llama_get_logits_ith(_ctx, i);
                new ReadOnlySpan<float>(p, VocabSize).CopyTo(logits.AsSpan(row++ * VocabSize, VocabSize));
            }
            return logits;
        }
        finally
        {
            Native.llama_batch_free(batch);
        }
    }

    public void Dispose()
    {
        Native.llama_free(_ctx);
        Native.llama_model_free(_model);
    }
}
