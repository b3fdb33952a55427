using System.Numerics.Tensors;
using Squeeze.Numerics;

namespace Squeeze.Models;

/// <summary>One token of a batch: which token, where, in which sequence, and whether its logits are wanted.</summary>
public readonly record struct BatchToken(int Token, int Position, int Sequence = 0, bool Output = false);

/// <summary>
/// The forward pass shared by every architecture (Llama, Qwen2, Qwen3 differ only by their <see cref="ArchitectureSpec"/>):
/// embeddings, then per layer RMSNorm, attention with grouped-query heads, RoPE, optional Q/K bias and per-head Q/K
/// RMSNorm, causal softmax over the KV cache, output projection, residual; RMSNorm, SwiGLU feed-forward, residual;
/// finally RMSNorm and the output projection (or tied embeddings). A batch may mix sequences and positions.
/// </summary>
public sealed class Transformer
{
    private readonly MatMul _matmul;
    private readonly Rope _rope;
    private readonly Attention _attention;

    public Transformer(TransformerModel model, int contextSize = 0, int threads = 0)
    {
        Model = model;
        Threads = threads > 0 ? threads : Workers.DefaultThreads;
        Cache = new KvCache(model.Hparams, contextSize > 0 ? contextSize : model.Hparams.ContextLength);
        _matmul = new MatMul(Threads);
        var h = model.Hparams;
        _rope = new Rope(model.Spec.Rope, h.RopeDimensions, h.RopeFreqBase, h.RopeFreqScale);
        _attention = new Attention(h.HeadCount, h.KvHeadCount, h.HeadDim, Threads);
    }

    public TransformerModel Model { get; }
    public KvCache Cache { get; }
    public int Threads { get; }

    /// <summary>Receives matmul inputs and layer activations while decoding, when set.</summary>
    public IForwardObserver? Observer { get; set; }

    /// <summary>Logits of a whole prompt: tokens at positions 0.. in sequence 0, all positions output (rows of n_vocab).</summary>
    public float[] Evaluate(IReadOnlyList<int> tokens, int startPosition = 0, int sequence = 0, bool allLogits = true)
    {
        var batch = new BatchToken[tokens.Count];
        for (int i = 0; i < batch.Length; i++)
            batch[i] = new BatchToken(tokens[i], startPosition + i, sequence, allLogits || i == batch.Length - 1);
        return Decode(batch);
    }

    /// <summary>
    /// Runs a batch through the model, adding its keys and values to the cache. Returns the logits of the tokens
    /// marked <see cref="BatchToken.Output"/>, in batch order: rows of n_vocab floats.
    /// </summary>
    public float[] Decode(ReadOnlySpan<BatchToken> batch)
    {
        var h = Model.Hparams;
        int n = batch.Length, embd = h.EmbeddingLength, headDim = h.HeadDim;
        int qDim = headDim * h.HeadCount, kvDim = headDim * h.KvHeadCount, ff = h.FeedForwardLength;
        if (n == 0) return [];
        var tokens = batch.ToArray();
        foreach (var t in tokens)
            if ((uint)t.Token >= (uint)h.VocabSize) throw new ArgumentOutOfRangeException(nameof(batch), $"token {t.Token} is outside the vocabulary of {h.VocabSize}");

        var outputs = Enumerable.Range(0, n).Where(i => tokens[i].Output).ToArray();
        var cells = new int[n];
        for (int i = 0; i < n; i++) cells[i] = Cache.Allocate(tokens[i].Sequence, tokens[i].Position);

        var x = new float[n * embd];
        for (int i = 0; i < n; i++) Model.TokenEmbd.DequantizeRow(tokens[i].Token, x.AsSpan(i * embd, embd));

        var xn = new float[n * embd];
        var q = new float[n * qDim];
        var k = new float[n * kvDim];
        var v = new float[n * kvDim];
        var attn = new float[n * qDim];
        var o = new float[n * embd];
        var gate = new float[n * ff];
        var up = new float[n * ff];
        var ropeCache = new float[n * h.RopeDimensions];
        for (int i = 0; i < n; i++) _rope.Cache(tokens[i].Position, ropeCache.AsSpan(i * h.RopeDimensions, h.RopeDimensions));

        for (int l = 0; l < h.LayerCount; l++)
        {
            var layer = Model.Layers[l];
            Observer?.OnActivation(Activations.LayerInput, l, x.AsSpan(0, n * embd), n);

            Norm(x, xn, n, embd, layer.AttnNorm);
            Project(layer.AttnQ, xn, n, q, layer.BiasQ);
            Project(layer.AttnK, xn, n, k, layer.BiasK);
            Project(layer.AttnV, xn, n, v, layer.BiasV);
            if (layer.AttnQNorm is not null) Norm(q, q, n * h.HeadCount, headDim, layer.AttnQNorm);
            if (layer.AttnKNorm is not null) Norm(k, k, n * h.KvHeadCount, headDim, layer.AttnKNorm);
            Workers.For(n, Threads, (i0, i1) =>
            {
                for (int i = i0; i < i1; i++)
                {
                    var cache = ropeCache.AsSpan(i * h.RopeDimensions, h.RopeDimensions);
                    for (int hd = 0; hd < h.HeadCount; hd++) _rope.Apply(q.AsSpan(i * qDim + hd * headDim, headDim), cache);
                    for (int hd = 0; hd < h.KvHeadCount; hd++) _rope.Apply(k.AsSpan(i * kvDim + hd * headDim, headDim), cache);
                    Cache.Store(l, cells[i], k.AsSpan(i * kvDim, kvDim), v.AsSpan(i * kvDim, kvDim));
                }
            });
            _attention.Run(Cache, l, tokens, q, attn);
            Project(layer.AttnOutput, attn, n, o, layer.BiasOutput);

            // The last layer only needs the rows whose logits are wanted (as llama.cpp's inp_out_ids).
            if (l == h.LayerCount - 1 && outputs.Length < n)
            {
                x = Gather(x, outputs, embd);
                o = Gather(o, outputs, embd);
                n = outputs.Length;
                if (n == 0) return [];
            }
            TensorPrimitives.Add(x.AsSpan(0, n * embd), o.AsSpan(0, n * embd), x.AsSpan(0, n * embd));

            Norm(x, xn, n, embd, layer.FfnNorm);
            Project(layer.FfnGate, xn, n, gate, null);
            Project(layer.FfnUp, xn, n, up, null);
            Workers.For(n, Threads, (i0, i1) =>
            {
                for (int i = i0; i < i1; i++) VectorOps.SwiGlu(gate.AsSpan(i * ff, ff), up.AsSpan(i * ff, ff));
            });
            Project(layer.FfnDown, gate, n, o, null);
            TensorPrimitives.Add(x.AsSpan(0, n * embd), o.AsSpan(0, n * embd), x.AsSpan(0, n * embd));

            Observer?.OnActivation(Activations.LayerOutput, l, x.AsSpan(0, n * embd), n);
        }

        if (h.LayerCount == 0 && outputs.Length < n) { x = Gather(x, outputs, embd); n = outputs.Length; }
        Norm(x, xn, n, embd, Model.OutputNorm);
        var logits = new float[n * h.VocabSize];
        Project(Model.Output, xn, n, logits, null);
        return logits;
    }

    private void Norm(float[] x, float[] y, int rows, int width, float[] weight)
    {
        float eps = Model.Hparams.RmsNormEpsilon;
        if (!ReferenceEquals(x, y)) Array.Copy(x, y, rows * width);
        Workers.For(rows, Threads, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++) VectorOps.RmsNorm(y.AsSpan(r * width, width), weight, eps);
        }, minRange: 16);
    }

    private void Project(Weight w, float[] x, int n, float[] y, float[]? bias)
    {
        Observer?.OnMatMulInput(w, x.AsSpan(0, n * w.Columns), n);
        _matmul.Run(w, x, n, y);
        if (bias is not null)
            for (int i = 0; i < n; i++) TensorPrimitives.Add(y.AsSpan(i * w.Rows, w.Rows), bias, y.AsSpan(i * w.Rows, w.Rows));
    }

    private static float[] Gather(float[] x, int[] rows, int width)
    {
        var y = new float[rows.Length * width];
        for (int i = 0; i < rows.Length; i++) Array.Copy(x, rows[i] * width, y, i * width, width);
        return y;
    }
}
