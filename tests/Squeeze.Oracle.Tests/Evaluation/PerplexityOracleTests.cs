using System.Text;
using Squeeze.Evaluation;
using Squeeze.Gguf;
using Squeeze.Models;
using Squeeze.Quantization;
using Squeeze.Quants;
using Squeeze.Tests;
using Squeeze.Tokenizers;
using Xunit;

namespace Squeeze.Oracle.Tests.Evaluation;

/// <summary>
/// Perplexity and KL divergence of stories260K (F32, and Q8_0 / Q4_0 files made by Squeeze's quantizer) against the
/// same numbers computed llama-perplexity's way from llama.cpp's own logits.
/// </summary>
public sealed class PerplexityOracleTests(PerplexityOracleTests.Files files) : IClassFixture<PerplexityOracleTests.Files>
{
    private const int NCtx = 128, Chunks = 4, Threads = 2;

    /// <summary>The quantized models and the wikitext tokens, made once.</summary>
    public sealed class Files : IDisposable
    {
        public string Dir { get; } = Directory.CreateTempSubdirectory("squeeze-ppl-oracle-").FullName;
        private readonly Dictionary<string, string> _models = [];
        private readonly Lock _lock = new();
        private int[]? _tokens;
        private readonly Dictionary<string, List<float[]>> _logits = [];

        public string Model(string type)
        {
            lock (_lock)
            {
                if (_models.TryGetValue(type, out var p)) return p;
                var source = TestData.StoriesModel;
                if (type == "F32") return _models[type] = source;
                var target = type == "Q8_0" ? GgmlType.Q8_0 : GgmlType.Q4_0;
                p = Path.Combine(Dir, $"stories260K-{type}.gguf");
                using var input = GgufFile.Open(source);
                // Every 2-D weight whose rows fit 32-element blocks gets the type; ffn_down (rows of 172) stays F32, as a
                // --tensor-type override would leave it.
                var keep = QuantizationPlan.Pure(input, LlamaFileTypes.Parse("F32"));
                var plan = new QuantizationPlan(type == "Q8_0" ? LlamaFileType.Q8_0 : LlamaFileType.Q4_0,
                    keep.Tensors.Select(t => t.Tensor.Shape.Count == 2 && t.Tensor.Shape[0] % 32 == 0 ? t with { TargetType = target } : t).ToList());
                ModelQuantizer.Quantize(input, plan, p, new QuantizeOptions { Threads = Threads });
                return _models[type] = p;
            }
        }

        /// <summary>The first 60,000 bytes of wiki.test.raw tokenized as llama-perplexity does.</summary>
        public int[] Tokens
        {
            get
            {
                lock (_lock)
                {
                    if (_tokens is not null) return _tokens;
                    var text = File.ReadAllBytes(TestData.Require("eval/wikitext-2-raw/wiki.test.raw")).AsSpan(0, 60_000).ToArray();
                    using var gguf = GgufFile.Open(TestData.StoriesModel);
                    return _tokens = Perplexity.Tokenize(Tokenizer.FromGguf(gguf), text);
                }
            }
        }

        /// <summary>llama.cpp's logits of the scored half of each chunk.</summary>
        public List<float[]> LlamaLogits(string type)
        {
            var path = Model(type);
            var tokens = Tokens;
            lock (_lock)
            {
                if (_logits.TryGetValue(type, out var l)) return l;
                return _logits[type] = LlamaPerplexityReference.ChunkLogits(path, tokens, NCtx, Chunks, bos: 1);
            }
        }

        public void Dispose() => Directory.Delete(Dir, recursive: true);
    }

    private static (TransformerModel Model, Tokenizer Tokenizer) Open(string path)
    {
        var model = TransformerModel.Load(path);
        return (model, Tokenizer.FromGguf(model.File));
    }

    private static void Close(double expected, double actual, double relative, string what, double absolute = 0)
    {
        double tolerance = Math.Max(relative * Math.Abs(expected), absolute);
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"{what}: expected {expected:R}, got {actual:R} (|diff| {Math.Abs(expected - actual):E3} > {tolerance:E3})");
    }

    /// <summary>Squeeze's evaluation with llama.cpp decoding (for the cache cells the run asks for), and the decoders to free.</summary>
    private static (Func<int, IBatchDecoder> Factory, List<OracleDecoder> Made) LlamaDecoder(string path, int batch)
    {
        var made = new List<OracleDecoder>();
        var (sequences, batchSize) = ChunkEvaluator.Layout(NCtx, batch);
        return (cells =>
        {
            var d = new OracleDecoder(path, cells, batchSize, sequences, Threads);
            made.Add(d);
            return d;
        }, made);
    }

    /// <summary>
    /// The evaluation itself (chunks, BOS, second-half scoring, batching one chunk in pieces or several chunks as
    /// parallel sequences, the sums) run on llama.cpp's logits equals llama-perplexity's arithmetic on them.
    /// </summary>
    [Theory]
    [InlineData("F32", 2048)]
    [InlineData("F32", 64)]
    [InlineData("Q8_0", 256)]
    [InlineData("Q4_0", 128)]
    public void Perplexity_of_llama_cpps_logits_equals_llama_perplexitys(string type, int batch)
    {
        var tokens = files.Tokens;
        var path = files.Model(type);
        using var gguf = GgufFile.Open(path);
        var tokenizer = Tokenizer.FromGguf(gguf);
        Assert.Equal(1, tokenizer.Bos);
        Assert.True(tokenizer.AddBos);
        var (factory, made) = LlamaDecoder(path, batch);
        PerplexityResult ours;
        try
        {
            ours = Perplexity.Run(factory, tokenizer, tokens, new PerplexityOptions { ContextSize = NCtx, BatchSize = batch, Chunks = Chunks, Threads = Threads },
                cancellation: TestContext.Current.CancellationToken);
        }
        finally { made.ForEach(d => d.Dispose()); }
        var (ppl, unc) = LlamaPerplexityReference.Perplexity(files.LlamaLogits(type), tokens, NCtx, tokenizer.VocabSize);
        Assert.Equal(Chunks, ours.ChunkCount);
        Assert.Equal(Chunks * (NCtx - 1 - NCtx / 2), ours.ScoredTokens);
        Close(ppl, ours.Ppl, 1e-6, "PPL");
        Close(unc, ours.Uncertainty, 1e-5, "PPL uncertainty");
    }

    /// <summary>
    /// End to end with Squeeze's own forward pass (ggml's flash attention, tinyBLAS's batched products, ggml-cpu's repacked
    /// matmuls, RoPE and SwiGLU rounding): F32 and Q8_0 give llama.cpp's PPL to the last bit (measured), bounded here by the
    /// issue's 1e-4; so does Q4_0 in 512-token batches, 2.2e-3 off (85.543 vs 85.733) while Squeeze did not follow
    /// llama.cpp's repacked Q4_0 GEMM.
    /// </summary>
    [Theory]
    [InlineData("F32", 2048)]
    [InlineData("Q8_0", 2048)]
    [InlineData("Q4_0", 512)]
    public void Perplexity_with_Squeezes_forward_pass_equals_llama_cpps(string type, int batch)
    {
        var tokens = files.Tokens;
        var (model, tokenizer) = Open(files.Model(type));
        using var _ = model;
        var ours = Perplexity.Run(model, tokenizer, tokens, new PerplexityOptions { ContextSize = NCtx, BatchSize = batch, Chunks = Chunks, Threads = Threads },
            cancellation: TestContext.Current.CancellationToken);
        var (ppl, _) = LlamaPerplexityReference.Perplexity(files.LlamaLogits(type), tokens, NCtx, model.Hparams.VocabSize);
        TestContext.Current.TestOutputHelper?.WriteLine($"{type} batch {batch}: PPL squeeze {ours.Ppl:R}, llama.cpp {ppl:R}");
        Close(ppl, ours.Ppl, 1e-4, "PPL");
    }

    /// <summary>
    /// End to end on tiny-qwen3-5M F32 (head size 64), where Squeeze's forward pass is close to llama.cpp's: Squeeze's
    /// tokenizer, evaluation and logits against llama.cpp's logits for the same tokens, computed llama-perplexity's way.
    /// </summary>
    [Fact]
    public void Perplexity_of_tiny_qwen3_with_Squeezes_forward_pass_equals_llama_cpps()
    {
        const int nCtx = 256, chunks = 2;
        var path = TestData.QwenF32Model;
        var text = File.ReadAllBytes(TestData.Require("eval/wikitext-2-raw/wiki.test.raw")).AsSpan(0, 20_000).ToArray();
        var (model, tokenizer) = Open(path);
        using var _ = model;
        var tokens = Perplexity.Tokenize(tokenizer, text);
        var ours = Perplexity.Run(model, tokenizer, tokens, new PerplexityOptions { ContextSize = nCtx, Chunks = chunks, Threads = Threads },
            cancellation: TestContext.Current.CancellationToken);
        var logits = LlamaPerplexityReference.ChunkLogits(path, tokens, nCtx, chunks, tokenizer.Bos);
        var (ppl, unc) = LlamaPerplexityReference.Perplexity(logits, tokens, nCtx, model.Hparams.VocabSize);
        Close(ppl, ours.Ppl, 1e-4, "PPL");
        Close(unc, ours.Uncertainty, 1e-3, "PPL uncertainty");
    }

    /// <summary>
    /// <c>--ppl-stride</c>: the window Squeeze derives (n_ctx + stride/2 rounded up to 256 cells) is the context llama.cpp
    /// makes, and the running and final PPL of Squeeze's strided run on llama.cpp's logits equal llama-perplexity's
    /// <c>perplexity_v2</c> arithmetic on them (windows decoded in one batch and in two).
    /// </summary>
    [Theory]
    [InlineData("F32", 128, 64, 128)]
    [InlineData("Q8_0", 256, 100, 256)]
    [InlineData("Q4_0", 200, 40, 100)]
    public void Strided_perplexity_of_llama_cpps_logits_equals_llama_perplexitys(string type, int nCtx, int stride, int batch)
    {
        const int windows = 5;
        var tokens = files.Tokens;
        var path = files.Model(type);
        using var gguf = GgufFile.Open(path);
        var tokenizer = Tokenizer.FromGguf(gguf);
        var (running, window) = LlamaPerplexityReference.Strided(path, tokens, nCtx, batch, stride, windows);
        var (ourWindow, ourBatch) = Perplexity.StridedLayout(nCtx, batch, stride);
        Assert.Equal(window, ourWindow);
        var made = new List<OracleDecoder>();
        var progress = new List<PerplexityProgress>();
        var cellsMade = new List<int>();
        PerplexityResult ours;
        try
        {
            ours = Perplexity.Run(cells =>
            {
                var d = new OracleDecoder(path, cells, ourBatch, 1, Threads);
                made.Add(d);
                cellsMade.Add(d.Model.ContextCells);
                return d;
            }, tokenizer, tokens, new PerplexityOptions { ContextSize = nCtx, BatchSize = batch, Chunks = windows, Threads = Threads, Stride = stride },
                null, new Collector<PerplexityProgress>(progress.Add), TestContext.Current.CancellationToken);
        }
        finally { made.ForEach(d => d.Dispose()); }
        Assert.Equal([window], cellsMade);
        Assert.Equal(windows, ours.ChunkCount);
        Assert.Equal(stride, ours.Stride);
        Assert.Equal((long)windows * stride, ours.ScoredTokens);
        Assert.Equal(running.Count, progress.Count);
        for (int i = 0; i < running.Count; i++)
        {
            Close(running[i], progress[i].Ppl, 1e-6, $"running PPL of window {i + 1}");
            Assert.Equal((long)i * stride, progress[i].Offset);
        }
        Close(running[^1], ours.Ppl, 1e-6, "PPL");
    }

    /// <summary>Strided with Squeeze's own forward pass (F32): within 1e-4 of llama-perplexity's strided PPL.</summary>
    [Fact]
    public void Strided_perplexity_with_Squeezes_forward_pass_equals_llama_cpps()
    {
        const int nCtx = 128, stride = 64, batch = 128, windows = 4;
        var (model, tokenizer) = Open(files.Model("F32"));
        using var _ = model;
        var ours = Perplexity.Run(model, tokenizer, files.Tokens,
            new PerplexityOptions { ContextSize = nCtx, BatchSize = batch, Chunks = windows, Threads = Threads, Stride = stride },
            cancellation: TestContext.Current.CancellationToken);
        var (running, window) = LlamaPerplexityReference.Strided(files.Model("F32"), files.Tokens, nCtx, batch, stride, windows);
        Assert.Equal(window, ours.ContextSize);
        Close(running[^1], ours.Ppl, 1e-4, "PPL");
    }

    /// <summary>
    /// Why Squeeze refuses <c>--ppl-stride</c> with a batch of two contexts or more: llama-perplexity then makes a cache
    /// of n_batch/n_ctx sequences, each with a quarter of the cells, and decoding a window into sequence 0 fails.
    /// </summary>
    [Fact]
    public void Strided_perplexity_with_a_multi_sequence_batch_fails_in_llama_cpp_and_is_refused_by_Squeeze()
    {
        const int nCtx = 128, stride = 64, batch = 512;
        int sequences = batch / nCtx;
        using (var oracle = new OracleModel(files.Model("F32"), contextSize: sequences * nCtx + stride / 2, batchSize: batch, sequences: sequences))
        {
            Assert.Throws<InvalidOperationException>(() => oracle.Decode(files.Tokens.AsSpan(0, batch).ToArray(), 0, allLogits: true));
        }
        var e = Assert.Throws<InvalidInputException>(() => Perplexity.StridedLayout(nCtx, batch, stride));
        Assert.Contains("-b 128", e.Message);
    }

    [Fact]
    public void A_model_against_its_own_base_file_has_no_divergence_and_the_same_top_token()
    {
        var (model, tokenizer) = Open(files.Model("Q8_0"));
        using var _ = model;
        var basePath = Path.Combine(files.Dir, "self.kl");
        var options = new PerplexityOptions { ContextSize = NCtx, Chunks = Chunks, Threads = Threads };
        Squeeze.IO.AtomicFile.Write(basePath, s => Perplexity.Run(model, tokenizer, files.Tokens, options, s));
        using var reader = LogitsFileReader.Open(basePath);
        var r = KlDivergence.Run(model, tokenizer, reader, options, cancellation: TestContext.Current.CancellationToken);
        Assert.True(r.Enough);
        Assert.True(Math.Abs(r.Kld.Value) < 1e-6, $"mean KLD {r.Kld.Value:E3}");
        Assert.Equal(1.0, r.SameTop.Value);
        Assert.True(Math.Abs(r.KldPercentile("Maximum")) < 1e-4 && Math.Abs(r.KldPercentile("Minimum")) < 1e-4);
    }

    /// <summary>
    /// Squeeze's writer fed with llama.cpp's F32 logits writes the bytes llama-perplexity writes; Squeeze's reader and
    /// statistics on llama.cpp's Q4_0 logits, and llama-perplexity's arithmetic on the same, agree on both files.
    /// </summary>
    [Fact]
    public void Base_files_from_Squeeze_and_from_llama_cpp_logits_give_the_same_statistics_on_both_sides()
    {
        const int vocab = 512;
        var tokens = files.Tokens;
        var cancel = TestContext.Current.CancellationToken;
        var llamaBase = LlamaPerplexityReference.BaseFile(files.LlamaLogits("F32"), tokens, NCtx, vocab);
        var llamaBasePath = Path.Combine(files.Dir, "llama-base.kl");
        File.WriteAllBytes(llamaBasePath, llamaBase);
        var squeezeBasePath = Path.Combine(files.Dir, "squeeze-base.kl");
        var options = new PerplexityOptions { ContextSize = NCtx, Chunks = Chunks, Threads = Threads };
        using var gguf = GgufFile.Open(files.Model("F32"));
        var tokenizer = Tokenizer.FromGguf(gguf);
        var (f32, madeF32) = LlamaDecoder(files.Model("F32"), options.BatchSize);
        try { Squeeze.IO.AtomicFile.Write(squeezeBasePath, s => Perplexity.Run(f32, tokenizer, tokens, options, s, cancellation: cancel)); }
        finally { madeF32.ForEach(d => d.Dispose()); }
        var squeezeBase = File.ReadAllBytes(squeezeBasePath);
        Assert.Equal(llamaBase.Length, squeezeBase.Length);
        int differing = 0;
        for (int i = 0; i < llamaBase.Length; i++) if (llamaBase[i] != squeezeBase[i]) differing++;
        Assert.True(differing == 0, $"{differing} bytes differ between the base files");

        var llamaQ = files.LlamaLogits("Q4_0");
        var results = new List<(string Name, LlamaPerplexityReference.KlStats Stats)>();
        foreach (var (name, path, bytes) in new[] { ("llama.cpp base", llamaBasePath, llamaBase), ("Squeeze base", squeezeBasePath, squeezeBase) })
        {
            var (q, madeQ) = LlamaDecoder(files.Model("Q4_0"), options.BatchSize);
            try
            {
                using var reader = LogitsFileReader.Open(path);
                results.Add(($"Squeeze reading {name}", ToStats(KlDivergence.Run(q, tokenizer, reader, options, cancellation: cancel))));
            }
            finally { madeQ.ForEach(d => d.Dispose()); }
            results.Add(($"llama.cpp reading {name}", LlamaPerplexityReference.KlDivergence(llamaQ, bytes, vocab)));
        }
        var reference = results[1].Stats; // llama.cpp's logits against llama.cpp's base file
        Assert.True(reference.Kld > 1e-3, $"Q4_0 should diverge measurably: KLD {reference.Kld}");
        foreach (var (name, s) in results)
        {
            Close(reference.PplQ, s.PplQ, 1e-4, $"{name}: PPL(Q)");
            Close(reference.PplQUnc, s.PplQUnc, 1e-4, $"{name}: PPL(Q) uncertainty");
            Close(reference.PplBase, s.PplBase, 1e-4, $"{name}: PPL(base)");
            Close(reference.Cor, s.Cor, 1e-4, $"{name}: Cor");
            Close(reference.LnRatio, s.LnRatio, 1e-4, $"{name}: ln ratio", 1e-7);
            Close(reference.LnRatioUnc, s.LnRatioUnc, 1e-4, $"{name}: ln ratio uncertainty", 1e-7);
            Close(reference.Ratio, s.Ratio, 1e-4, $"{name}: ratio");
            Close(reference.Diff, s.Diff, 1e-4, $"{name}: difference", 1e-6);
            Close(reference.DiffUnc, s.DiffUnc, 1e-4, $"{name}: difference uncertainty", 1e-6);
            Close(reference.Kld, s.Kld, 1e-4, $"{name}: KLD", 1e-8);
            Close(reference.KldUnc, s.KldUnc, 1e-4, $"{name}: KLD uncertainty", 1e-8);
            foreach (var (k, v) in reference.KldPct) Close(v, s.KldPct[k], 1e-4, $"{name}: KLD {k}", 1e-7);
            Close(reference.Dp, s.Dp, 1e-4, $"{name}: Δp", 1e-7);
            Close(reference.DpUnc, s.DpUnc, 1e-4, $"{name}: Δp uncertainty", 1e-7);
            foreach (var (k, v) in reference.DpPct) Close(v, s.DpPct[k], 1e-4, $"{name}: Δp {k}", 1e-7);
            Close(reference.Rms, s.Rms, 1e-4, $"{name}: RMS Δp");
            Close(reference.RmsUnc, s.RmsUnc, 1e-4, $"{name}: RMS Δp uncertainty");
            Close(reference.SameTop, s.SameTop, 1e-4, $"{name}: same top p");
            Close(reference.SameTopUnc, s.SameTopUnc, 1e-4, $"{name}: same top p uncertainty");
        }
    }

    private sealed class Collector<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    private static LlamaPerplexityReference.KlStats ToStats(KlDivergenceResult r) => new(
        r.PplQ.Value, r.PplQ.Uncertainty, r.PplBase.Value, r.PplBase.Uncertainty, r.Correlation, r.LnPplRatio.Value, r.LnPplRatio.Uncertainty,
        r.PplRatio.Value, r.PplDifference.Value, r.PplDifference.Uncertainty, r.Kld.Value, r.Kld.Uncertainty,
        r.KldPercentiles.ToDictionary(p => p.Name, p => p.Value), r.DeltaP.Value, r.DeltaP.Uncertainty,
        r.DeltaPPercentiles.ToDictionary(p => p.Name, p => p.Value), r.RmsDeltaP.Value, r.RmsDeltaP.Uncertainty, r.SameTop.Value, r.SameTop.Uncertainty);
}

/// <summary>Tests that measure the process's live heap: they run alone, after the parallel tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryCollection
{
    public const string Name = "Memory measurements";
}

/// <summary>The memory of a KL-divergence run against the number of chunks.</summary>
[Collection(MemoryCollection.Name)]
public sealed class KlMemoryTests(PerplexityOracleTests.Files files) : IClassFixture<PerplexityOracleTests.Files>
{
    private const int NCtx = 128;

    private static (TransformerModel Model, Tokenizer Tokenizer) Open(string path)
    {
        var model = TransformerModel.Load(path);
        return (model, Tokenizer.FromGguf(model.File));
    }

    [Fact]
    public void Memory_of_a_KL_run_does_not_grow_with_the_number_of_chunks()
    {
        var (model, tokenizer) = Open(files.Model("F32"));
        using var _ = model;
        var tokens = files.Tokens;
        var basePath = Path.Combine(files.Dir, "memory.kl");
        const int manyChunks = 8;
        var options = new PerplexityOptions { ContextSize = NCtx, BatchSize = NCtx, Chunks = manyChunks, Threads = 1 };
        Squeeze.IO.AtomicFile.Write(basePath, s => Perplexity.Run(model, tokenizer, tokens, options, s));

        long Peak(int chunks)
        {
            using var reader = LogitsFileReader.Open(basePath);
            long peak = 0;
            var progress = new SyncProgress<KlProgress>(_ => peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true)));
            KlDivergence.Run(model, tokenizer, reader, options with { Chunks = chunks }, progress);
            return peak;
        }
        // Warm up both lengths: JIT tiers, pools and lazily made buffers settle on the path of the longer run too.
        Peak(2);
        Peak(manyChunks);
        long two = Peak(2), many = Peak(manyChunks);
        // Holding the base file's records would add 6 chunks x 63 records x 1,032 bytes = 390 KB.
        Assert.True(many - two < 4096, $"live heap after 2 chunks {two:N0} B, after {manyChunks} chunks {many:N0} B");
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
