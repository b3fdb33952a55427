using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Quantization;
using Squeeze.Quants;
using Squeeze.Tests;
using Xunit;

namespace Squeeze.Oracle.Tests.Quantization;

/// <summary>
/// <c>squeeze quantize --pure</c> against <c>llama_model_quantize</c> with <c>pure</c> set: stories260K and synthetic
/// llama/qwen3 models, every file type whose kernels Squeeze has, with and without an imatrix (written in llama.cpp's
/// legacy and GGUF formats). The files must be identical: metadata, tensor order, every byte; llama.cpp must load ours.
/// </summary>
public sealed class PureQuantizeOracleTests(PureQuantizeOracleTests.Models models) : IClassFixture<PureQuantizeOracleTests.Models>
{
    private const int Threads = 2;

    /// <summary>The models (created once) and their imatrix files.</summary>
    public sealed class Models : IDisposable
    {
        public string Dir { get; } = Directory.CreateTempSubdirectory("squeeze-pure-oracle-").FullName;
        private readonly Dictionary<string, string> _paths = [];
        private readonly Dictionary<string, (string Path, Dictionary<string, float[]> Weights, List<LlamaQuantize.KvOverride> Overrides)> _imatrices = [];
        private readonly Lock _lock = new();

        public string Model(string name)
        {
            lock (_lock)
            {
                if (_paths.TryGetValue(name, out var p)) return p;
                p = name switch
                {
                    "stories260K" => TestData.StoriesModel,
                    "llama" => Write(SyntheticModels.Llama),
                    "qwen3" => Write(SyntheticModels.Qwen3),
                    "llama-moe" => Write(SyntheticModels.LlamaMoe),
                    _ => throw new ArgumentException(name),
                };
                _paths[name] = p;
                return p;
            }
        }

        private string Write(SyntheticModels.Spec spec)
        {
            var path = Path.Combine(Dir, $"{spec}.gguf");
            SyntheticModels.Write(path, spec, seed: spec.NFf);
            return path;
        }

        /// <summary>
        /// An imatrix for every quantizable tensor of <paramref name="name"/> (the token embeddings too, so that types ggml
        /// cannot quantize without weights work there), in llama.cpp's GGUF format (qwen3) or legacy format (others);
        /// the weights llama-quantize would pass (computed here from the raw numbers) and its metadata overrides.
        /// </summary>
        public (string Path, Dictionary<string, float[]> Weights, List<LlamaQuantize.KvOverride> Overrides) Imatrix(string name)
        {
            lock (_lock)
            {
                if (_imatrices.TryGetValue(name, out var im)) return im;
                var rng = new Random(name.Length * 7919);
                var weights = new Dictionary<string, float[]>(StringComparer.Ordinal);
                var legacy = new List<ImatrixFiles.LegacyEntry>();
                var gguf = new List<ImatrixFiles.GgufEntry>();
                bool useGguf = name is "qwen3" or "llama-moe";
                using (var f = GgufFile.Open(Model(name)))
                {
                    int k = 0;
                    foreach (var t in f.Tensors.Where(t => QuantizableTensors.Check(t).Allowed))
                    {
                        int ne0 = (int)t.Shape[0], nMat = t.Shape.Count > 2 ? (int)t.Shape[2] : 1;
                        var mean = new float[ne0 * nMat];
                        for (int i = 0; i < mean.Length; i++) mean[i] = (float)(0.5 * Math.Exp(2 * (rng.NextDouble() - 0.5)) * (i % 37 == 0 ? 30 : 1));
                        if (useGguf)
                        {
                            // Raw sums and token counts per matrix (expert). One matrix never exercised (count 0): llama-quantize
                            // gives it weights of 1; fractional counts are rounded as lround does.
                            var counts = new float[nMat];
                            for (int j = 0; j < nMat; j++) counts[j] = (k++ % 5 == 2) ? 0f : 4096f + k + (j % 2 == 1 ? 0.5f : 0f);
                            var sums = new float[mean.Length];
                            var w = new float[mean.Length];
                            for (int j = 0; j < nMat; j++)
                            {
                                float c = (float)Math.Round(counts[j], MidpointRounding.AwayFromZero);
                                for (int i = 0; i < ne0; i++)
                                {
                                    sums[j * ne0 + i] = mean[j * ne0 + i] * counts[j];
                                    w[j * ne0 + i] = c > 0 ? sums[j * ne0 + i] / c : 1f;
                                }
                            }
                            gguf.Add(new(t.Name, sums, counts));
                            weights[t.Name] = w;
                        }
                        else
                        {
                            const int ncall = 10;
                            var data = mean.Select(m => m * ncall).ToArray();
                            legacy.Add(new(t.Name, ncall, data));
                            weights[t.Name] = data.Select(d => d / (float)ncall).ToArray();
                        }
                    }
                }
                string path = Path.Combine(Dir, $"{name}-imatrix{(useGguf ? ".gguf" : ".dat")}");
                string dataset = $"{name}-calibration.txt";
                int chunks = 42;
                if (useGguf) ImatrixFiles.WriteGguf(path, gguf, [dataset, "second.txt"], (uint)chunks, 512);
                else File.WriteAllBytes(path, ImatrixFiles.LegacyBytes(legacy, chunks, dataset));
                // What llama-quantize adds (tools/quantize/quantize.cpp): file, first dataset, entry count, chunk count.
                var overrides = new List<LlamaQuantize.KvOverride>
                {
                    new(GgufKeys.Quantize.ImatrixFile, path),
                    new(GgufKeys.Quantize.ImatrixDataset, dataset),
                    new(GgufKeys.Quantize.ImatrixEntriesCount, Int: weights.Count),
                    new(GgufKeys.Quantize.ImatrixChunksCount, Int: chunks),
                };
                return _imatrices[name] = (path, weights, overrides);
            }
        }

        public void Dispose() => Directory.Delete(Dir, recursive: true);
    }

    /// <summary>
    /// Every listed file type on stories260K. On the synthetic models (where quantizing is what costs), one file type per
    /// default tensor type: under --pure, file types sharing a tensor type (Q4_K_S and Q4_K_M, IQ3_XS/IQ3_S/IQ3_M, ...)
    /// give the same tensors and differ only in general.file_type, which stories260K covers; Q2_K_S stays, as its
    /// tensors need an imatrix where Q2_K's do not.
    /// </summary>
    public static TheoryData<string, string, bool> Cases()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var model in new[] { "stories260K", "llama", "qwen3", "llama-moe" })
        {
            var seen = new HashSet<GgmlType>();
            foreach (var ft in LlamaFileTypes.All.Where(r => r.IsListed))
            {
                bool distinct = seen.Add(ft.DefaultType!.Value) || ft.FileType == LlamaFileType.Q2_K_S;
                if (model != "stories260K" && !distinct) continue;
                foreach (bool imatrix in new[] { false, true })
                    data.Add(model, ft.Name, imatrix);
            }
        }
        return data;
    }

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(Cases))]
    public void Pure_quantization_is_identical_to_llama_cpp(string model, string fileType, bool withImatrix)
    {
        var target = LlamaFileTypes.Parse(fileType);
        string input = models.Model(model);
        string context = $"{model} {fileType} --pure{(withImatrix ? " --imatrix" : "")}";
        var im = withImatrix ? models.Imatrix(model) : default;
        string tag = $"{model}-{fileType}-{(withImatrix ? "im" : "noim")}";
        string ours = Path.Combine(models.Dir, $"{tag}-squeeze.gguf"), theirs = Path.Combine(models.Dir, $"{tag}-llama.gguf");

        QuantizationPlan? plan = null;
        string? planError = null;
        using (var f = GgufFile.Open(input))
        {
            try { plan = QuantizationPlan.Pure(f, target); }
            catch (QuantizationException e) { planError = e.Message; }
        }
        if (plan is not null)
        {
            var missing = plan.Tensors.Where(t => t.Converts).Select(t => t.TargetType).Distinct().Where(t => QuantKernels.Find(t) is null).ToList();
            if (missing.Count > 0) Assert.Skip($"{context}: Squeeze has no kernels for {string.Join(", ", missing.Select(t => t.Name()))} yet");
            bool needsImatrix = plan.Tensors.Any(t => t.Converts && (t.RequiresImatrix || QuantKernels.Get(t.TargetType).RequiresImportance));
            if (needsImatrix && !withImatrix)
            {
                // llama.cpp refuses too (tensor_requires_imatrix); not called: ggml would abort on a type it cannot quantize without weights.
                var e = Assert.Throws<QuantizationException>(() => Squeeze(input, ours, target, null));
                Assert.Contains("imatrix", e.Message);
                return;
            }
        }

        string? squeezeError = planError;
        TimeSpan squeezeTime = default;
        if (plan is not null)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            try { Squeeze(input, ours, target, withImatrix ? ImportanceMatrix.Load(im.Path) : null); }
            catch (QuantizationException e) { squeezeError = e.Message; }
            squeezeTime = clock.Elapsed;
        }
        var llamaClock = System.Diagnostics.Stopwatch.StartNew();
        bool llamaOk = LlamaQuantize.Run(input, theirs, (int)target.FileType, pure: true, Threads,
            withImatrix ? im.Weights : null, withImatrix ? im.Overrides : null);
        TestContext.Current.TestOutputHelper?.WriteLine($"{context}: squeeze {squeezeTime.TotalSeconds:0.00} s, llama.cpp {llamaClock.Elapsed.TotalSeconds:0.00} s");

        if (!llamaOk)
        {
            Assert.True(squeezeError is not null, $"{context}: llama.cpp refused to quantize, Squeeze did not");
            Assert.False(File.Exists(ours));
            return;
        }
        Assert.True(squeezeError is null, $"{context}: llama.cpp quantized, Squeeze refused: {squeezeError}");
        GgufAssert.SameFile(theirs, ours, context);
        // llama.cpp loads and runs Squeeze's file.
        using (var run = new OracleModel(ours, contextSize: 32, batchSize: 8, threads: Threads))
        {
            var logits = run.Decode([1, 7, 42, 99, 3], startPosition: 0, allLogits: false);
            Assert.True(logits.All(float.IsFinite), $"{context}: llama.cpp's logits on Squeeze's file are not finite");
        }
        File.Delete(ours);
        File.Delete(theirs);
    }

    [Theory(SkipTestWithoutData = true)]
    [InlineData("llama", "Q4_0", "q8_0", "q6_K", true)]
    [InlineData("qwen3", "Q4_K_M", "f16", "q8_0", true)]
    [InlineData("llama", "Q5_1", null, null, false)]
    [InlineData("stories260K", "Q2_K", "q8_0", null, true)]
    public void Output_and_embedding_types_are_as_llama_cpp(string model, string fileType, string? outputType, string? embeddingType, bool quantizeOutput)
    {
        var target = LlamaFileTypes.Parse(fileType);
        string input = models.Model(model);
        var options = new PureOptions
        {
            QuantizeOutput = quantizeOutput,
            OutputTensorType = outputType is null ? null : GgmlTypes.TryParse(outputType, out var o) ? o : throw new ArgumentException(outputType),
            TokenEmbeddingType = embeddingType is null ? null : GgmlTypes.TryParse(embeddingType, out var e) ? e : throw new ArgumentException(embeddingType),
        };
        string context = $"{model} {fileType} --pure output {outputType ?? "-"} embeddings {embeddingType ?? "-"}{(quantizeOutput ? "" : " --leave-output-tensor")}";
        string ours = Path.Combine(models.Dir, $"{model}-{fileType}-opts-squeeze.gguf"), theirs = Path.Combine(models.Dir, $"{model}-{fileType}-opts-llama.gguf");
        QuantizationPlan plan;
        using (var f = GgufFile.Open(input))
        {
            plan = QuantizationPlan.Pure(f, target, options);
            var missing = plan.Tensors.Where(t => t.Converts).Select(t => t.TargetType).Distinct().Where(t => QuantKernels.Find(t) is null).ToList();
            if (missing.Count > 0) Assert.Skip($"{context}: Squeeze has no kernels for {string.Join(", ", missing.Select(t => t.Name()))} yet");
            ModelQuantizer.Quantize(f, plan, ours, new QuantizeOptions { Threads = Threads }, cancellation: TestContext.Current.CancellationToken);
        }
        Assert.True(LlamaQuantize.Run(input, theirs, (int)target.FileType, pure: true, Threads, quantizeOutput: quantizeOutput,
            outputTensorType: (int?)options.OutputTensorType, tokenEmbeddingType: (int?)options.TokenEmbeddingType), $"{context}: llama.cpp failed");
        GgufAssert.SameFile(theirs, ours, context);
    }

    [Theory(SkipTestWithoutData = true)]
    [InlineData("ffn_", null)]
    [InlineData(null, "attn_")]
    public void Imatrix_filters_are_as_llama_quantize(string? include, string? exclude)
    {
        var target = LlamaFileTypes.Parse("Q4_K_M");
        string input = models.Model("qwen3");
        var im = models.Imatrix("qwen3");
        string[] inc = include is null ? [] : [include], exc = exclude is null ? [] : [exclude];
        var ours = Path.Combine(models.Dir, $"filter-{include}-{exclude}-squeeze.gguf");
        var theirs = Path.Combine(models.Dir, $"filter-{include}-{exclude}-llama.gguf");
        string context = $"qwen3 Q4_K_M --pure --imatrix --include-weights {include} --exclude-weights {exclude}";
        var imatrix = ImportanceMatrix.Load(im.Path).Filtered(inc, exc);
        using (var f = GgufFile.Open(input))
        {
            var plan = QuantizationPlan.Pure(f, target);
            var missing = plan.Tensors.Where(t => t.Converts).Select(t => t.TargetType).Distinct().Where(t => QuantKernels.Find(t) is null).ToList();
            if (missing.Count > 0) Assert.Skip($"{context}: Squeeze has no kernels for {string.Join(", ", missing.Select(t => t.Name()))} yet");
            ModelQuantizer.Quantize(f, plan, ours, new QuantizeOptions { Threads = Threads, Imatrix = imatrix }, cancellation: TestContext.Current.CancellationToken);
        }
        // llama-quantize filters by substring before calling llama_model_quantize, and counts what is left.
        var kept = im.Weights.Where(kv => (inc.Length == 0 || inc.Any(kv.Key.Contains)) && !exc.Any(kv.Key.Contains))
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(kept.Count, imatrix.EntryCount);
        var overrides = im.Overrides.Select(o => o.Key == GgufKeys.Quantize.ImatrixEntriesCount ? o with { Int = kept.Count } : o).ToList();
        Assert.True(LlamaQuantize.Run(input, theirs, (int)target.FileType, pure: true, Threads, kept, overrides), $"{context}: llama.cpp failed");
        GgufAssert.SameFile(theirs, ours, context);
    }

    [Theory(SkipTestWithoutData = true)]
    [InlineData("Q8_0", "Q4_K_M")]
    [InlineData("Q4_K_M", "IQ4_XS")]
    public void Requantizing_is_as_llama_cpp(string first, string second)
    {
        // The source: llama.cpp's own quantization of the synthetic llama model, so both sides start from the same bytes.
        string source = Path.Combine(models.Dir, $"llama-{first}-source.gguf");
        Assert.True(LlamaQuantize.Run(models.Model("llama"), source, (int)LlamaFileTypes.Parse(first).FileType, pure: true, Threads));
        var target = LlamaFileTypes.Parse(second);
        string context = $"llama {first} -> {second} --pure --allow-requantize";
        string ours = Path.Combine(models.Dir, $"requant-{first}-{second}-squeeze.gguf"), theirs = Path.Combine(models.Dir, $"requant-{first}-{second}-llama.gguf");
        using (var f = GgufFile.Open(source))
        {
            var plan = QuantizationPlan.Pure(f, target);
            var needed = plan.Tensors.Where(t => t.Converts).SelectMany(t => new[] { t.TargetType, t.Tensor.Type }).Distinct()
                .Where(t => QuantKernels.Find(t) is null).ToList();
            if (needed.Count > 0) Assert.Skip($"{context}: Squeeze has no kernels for {string.Join(", ", needed.Select(t => t.Name()))} yet");
            Assert.Throws<QuantizationException>(() => ModelQuantizer.Quantize(f, plan, ours, new QuantizeOptions { Threads = Threads },
                cancellation: TestContext.Current.CancellationToken));
            ModelQuantizer.Quantize(f, plan, ours, new QuantizeOptions { Threads = Threads, AllowRequantize = true },
                cancellation: TestContext.Current.CancellationToken);
        }
        Assert.False(LlamaQuantize.Run(source, theirs, (int)target.FileType, pure: true, Threads), $"{context}: llama.cpp requantized without being allowed");
        Assert.True(LlamaQuantize.Run(source, theirs, (int)target.FileType, pure: true, Threads, allowRequantize: true), $"{context}: llama.cpp failed");
        GgufAssert.SameFile(theirs, ours, context);
    }

    private static void Squeeze(string input, string output, QuantizeTarget target, ImportanceMatrix? imatrix) =>
        ModelQuantizer.QuantizePure(input, output, target, new QuantizeOptions { Threads = Threads, Imatrix = imatrix },
            cancellation: TestContext.Current.CancellationToken);

    [Fact]
    public void Trailing_unit_dimensions_are_dropped_as_gguf_does()
    {
        // A copy of the synthetic llama model whose attn_norm is stored as [256, 1] and with an extra [32, 4, 1] tensor.
        string input = Path.Combine(models.Dir, "llama-unit-dims.gguf");
        using (var src = GgufFile.Open(models.Model("llama")))
        {
            var w = new GgufWriter();
            foreach (var kv in src.Metadata) w.Set(kv.Key, kv.Value);
            foreach (var t in src.Tensors)
            {
                var shape = t.Name == "blk.0.attn_norm.weight" ? [t.Shape[0], 1] : t.Shape.ToArray();
                w.AddTensor(t.Name, t.Type, shape, s => src.CopyTensorTo(t, s));
            }
            w.AddTensor("blk.0.extra.weight", GgmlType.F32, [32, 4, 1], new byte[32 * 4 * 4]);
            w.WriteTo(input);
        }
        string ours = Path.Combine(models.Dir, "unit-dims-squeeze.gguf"), theirs = Path.Combine(models.Dir, "unit-dims-llama.gguf");
        var target = LlamaFileTypes.Parse("F32");
        Squeeze(input, ours, target, null);
        Assert.True(LlamaQuantize.Run(input, theirs, (int)target.FileType, pure: true, Threads));
        GgufAssert.SameFile(theirs, ours, "trailing dimensions of 1");
        using var f = GgufFile.Open(ours);
        Assert.Equal([256L], f.FindTensor("blk.0.attn_norm.weight")!.Shape);
        Assert.Equal([32L, 4L], f.FindTensor("blk.0.extra.weight")!.Shape);
    }

    [Fact]
    public unsafe void Native_struct_layouts_match_llama_h()
    {
        Assert.Equal(56, sizeof(LlamaModelQuantizeParams));
        Assert.Equal(24, sizeof(LlamaModelImatrixData));
        Assert.Equal(264, sizeof(LlamaModelKvOverride));
        OracleLibrary.EnsureLoaded();
        var p = Native.llama_model_quantize_default_params();
        Assert.Equal((int)LlamaFileType.Q8_0, p.FType);
        Assert.Equal(GgmlTypes.Count, p.OutputTensorType);
        Assert.Equal(1, p.QuantizeOutputTensor);
        Assert.Equal(0, p.Pure);
    }

    [Fact]
    public void Llama_cpp_loads_the_synthetic_models()
    {
        Assert.NotNull(OracleModel.Probe(models.Model("llama")));
        Assert.NotNull(OracleModel.Probe(models.Model("qwen3")));
        Assert.NotNull(OracleModel.Probe(models.Model("llama-moe")));
    }
}
