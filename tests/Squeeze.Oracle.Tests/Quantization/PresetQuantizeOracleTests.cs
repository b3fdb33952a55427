using System.Diagnostics;
using System.Text.RegularExpressions;
using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Models;
using Squeeze.Quantization;
using Squeeze.Quants;
using Squeeze.Tests;
using Xunit;

namespace Squeeze.Oracle.Tests.Quantization;

/// <summary>
/// <c>squeeze quantize</c> with llama-quantize's mixtures against <c>llama_model_quantize</c>: a synthetic Qwen3 with
/// 36 layers (GQA 4, so every layer rule and counter is exercised) and stories260K (64-wide rows: every fallback), every
/// file type, with and without an imatrix; then the rule options. The files must be identical: metadata, tensor order,
/// types, every byte. The types are also compared with llama.cpp's dry run (read from its log) on the full-size
/// 36-layer model, a 70B-shaped llama and an 8-expert llama. Not run in parallel with other tests: the dry run's lines
/// are read from llama.cpp's process-wide log.
/// </summary>
[CollectionDefinition(nameof(PresetQuantizeOracleTests), DisableParallelization = true)]
public sealed class PresetQuantizeCollection;

[Collection(nameof(PresetQuantizeOracleTests))]
public sealed partial class PresetQuantizeOracleTests(PresetQuantizeOracleTests.Models models) : IClassFixture<PresetQuantizeOracleTests.Models>
{
    private const int Threads = 2;

    /// <summary>The file types of issue 6 (every llama.cpp file type llama-quantize lists) and COPY.</summary>
    public static readonly string[] FileTypes =
    [
        "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M",
        "Q6_K", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ4_NL", "IQ4_XS",
        "TQ1_0", "TQ2_0", "F16", "BF16", "F32", "COPY", "MXFP4_MOE", "Q1_0", "Q2_0",
    ];

    /// <summary>The models (made once), their imatrix files, and a folder for outputs.</summary>
    public sealed class Models : IDisposable
    {
        public string Dir { get; } = Directory.CreateTempSubdirectory("squeeze-preset-oracle-").FullName;
        private readonly Dictionary<string, string> _paths = [];
        private readonly Dictionary<string, OracleImatrix> _imatrices = [];
        private readonly Lock _lock = new();

        /// <summary>Qwen3, 36 layers, n_embd 256, n_ff 768, 8 heads over 2 KV heads (GQA 4), F16 weights.</summary>
        public static SyntheticModelOptions Qwen3x36 { get; } = new()
        {
            Spec = ArchitectureSpec.Qwen3, LayerCount = 36, EmbeddingLength = 256, FeedForwardLength = 768, HeadCount = 8, KvHeadCount = 2,
            VocabSize = 320, WeightType = GgmlType.F16, Name = "synthetic qwen3 x36", Seed = 36,
        };

        /// <summary>
        /// A model by name: <c>stories260K</c>; <c>qwen3x36</c> (<see cref="Qwen3x36"/>, 27 M weights); <c>qwen3x36-rows4</c>,
        /// the same with every matrix cut to its first 4 rows (llama-quantize reads only names, row lengths and metadata
        /// to choose types, so this keeps every rule while quantizing 100 times less); <c>llama70b</c>, a llama with 80
        /// layers and GQA 8 (llama.cpp's 70B rules) and <c>mixtral</c>, a llama with 8 experts and 32 layers, both as
        /// 2-row skeletons for type checks.
        /// </summary>
        public string Model(string name)
        {
            lock (_lock)
            {
                if (_paths.TryGetValue(name, out var p)) return p;
                p = name switch
                {
                    "stories260K" => TestData.StoriesModel,
                    "qwen3x36" => Write("qwen3x36", Qwen3x36),
                    "qwen3x36-rows4" => Skeleton(Model("qwen3x36"), "qwen3x36-rows4", rows: 4, layers: null),
                    "llama70b" => Skeleton(Write("llama70b-1", new SyntheticModelOptions
                    {
                        Spec = ArchitectureSpec.Llama, LayerCount = 1, EmbeddingLength = 256, FeedForwardLength = 512, HeadCount = 8, KvHeadCount = 1,
                        VocabSize = 300, WeightType = GgmlType.F16, Name = "synthetic llama 70b",
                    }), "llama70b", rows: 2, layers: 80),
                    "mixtral" => Skeleton(WriteSpec("mixtral-1", SyntheticModels.LlamaMoe with { NExpert = 8, NExpertUsed = 2, NLayer = 1 }), "mixtral", rows: 2, layers: 32),
                    _ => throw new ArgumentException(name),
                };
                return _paths[name] = p;
            }
        }

        private string WriteSpec(string name, SyntheticModels.Spec spec)
        {
            var path = Path.Combine(Dir, name + ".gguf");
            SyntheticModels.Write(path, spec);
            return path;
        }

        /// <summary>
        /// A copy of <paramref name="source"/> with every tensor of two or more dimensions cut to its first
        /// <paramref name="rows"/> rows (per expert), and, when <paramref name="layers"/> is given, block 0 repeated that
        /// many times (block_count set to match).
        /// </summary>
        private string Skeleton(string source, string name, int rows, int? layers)
        {
            var path = Path.Combine(Dir, name + ".gguf");
            using var src = GgufFile.Open(source);
            var w = new GgufWriter();
            foreach (var kv in src.Metadata) w.Set(kv.Key, kv.Value);
            if (layers is int n) w.Set(GgufKeys.Arch.BlockCount(src.Architecture!), GgufValue.UInt32((uint)n));
            void Add(GgufTensorInfo t, string tensorName)
            {
                if (t.Shape.Count < 2) { w.AddTensor(tensorName, t.Type, t.Shape, src.GetTensorBytes(t).ToArray()); return; }
                long keep = Math.Min(rows, t.Shape[1]), mats = t.Shape.Count > 2 ? t.Shape[2] : 1;
                long rowBytes = GgmlTypes.RowSize(t.Type, t.Shape[0]);
                var bytes = new byte[rowBytes * keep * mats];
                var all = src.GetTensorBytes(t);
                for (long m = 0; m < mats; m++)
                    all.Slice((int)(m * t.Shape[1] * rowBytes), (int)(keep * rowBytes)).CopyTo(bytes.AsSpan((int)(m * keep * rowBytes)));
                var shape = t.Shape.ToArray();
                shape[1] = keep;
                w.AddTensor(tensorName, t.Type, shape, bytes);
            }
            foreach (var t in src.Tensors)
            {
                if (layers is int count && t.Name.StartsWith("blk.0.", StringComparison.Ordinal))
                    for (int l = 0; l < count; l++) Add(t, $"blk.{l}.{t.Name["blk.0.".Length..]}");
                else Add(t, t.Name);
            }
            w.WriteTo(path);
            return path;
        }

        private string Write(string name, SyntheticModelOptions o)
        {
            var path = Path.Combine(Dir, name + ".gguf");
            SyntheticModel.Write(path, o);
            return path;
        }

        /// <summary>The model's imatrix: GGUF format for the synthetic model, legacy .dat for stories260K.</summary>
        public OracleImatrix Imatrix(string name)
        {
            lock (_lock)
            {
                if (_imatrices.TryGetValue(name, out var im)) return im;
                bool gguf = name != "stories260K";
                return _imatrices[name] = OracleImatrix.Write(Model(name), Path.Combine(Dir, $"{name}-imatrix{(gguf ? ".gguf" : ".dat")}"), gguf, name.Length * 7919);
            }
        }

        public void Dispose() => Directory.Delete(Dir, recursive: true);
    }

    public static TheoryData<string, string, bool> Cases()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var model in new[] { "qwen3x36-rows4", "stories260K" })
            foreach (var ft in FileTypes)
                foreach (bool imatrix in new[] { false, true })
                    data.Add(model, ft, imatrix);
        return data;
    }

    /// <summary>llama-quantize's settings beyond the file type, for both sides.</summary>
    private sealed record Settings
    {
        public bool Imatrix { get; init; }
        public bool Pure { get; init; }
        public bool QuantizeOutput { get; init; } = true;
        public string? OutputType { get; init; }
        public string? EmbeddingType { get; init; }
        public string[] TensorTypes { get; init; } = [];
        public int[] Prune { get; init; } = [];
        public MetadataOverride[] Overrides { get; init; } = [];
        public string[] IncludeWeights { get; init; } = [];
    }

    public static TheoryData<string, string, bool> TypeCases()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var model in new[] { "qwen3x36", "llama70b", "mixtral" })
            foreach (var ft in FileTypes)
                foreach (bool imatrix in new[] { false, true })
                    data.Add(model, ft, imatrix);
        return data;
    }

    [GeneratedRegex(@"\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[[^\]]*\], type =\s*(\S+), size =[^\n(]*(?:\((\w+)\))?\n")]
    private static partial Regex DryRunLine();

    /// <summary>Every tensor's type as llama.cpp's dry run reports it, with the preset rules Squeeze applies.</summary>
    [Theory]
    [MemberData(nameof(TypeCases))]
    public void Types_are_llama_cpp_dry_run_types(string model, string fileType, bool withImatrix)
    {
        var target = LlamaFileTypes.Parse(fileType);
        string input = models.Model(model);
        var im = withImatrix ? models.Imatrix(model) : null;
        string context = $"{model} {fileType}{(withImatrix ? " --imatrix" : "")} --dry-run";
        QuantizationPlan? plan = null;
        string? error = null;
        using (var f = GgufFile.Open(input))
        {
            try { plan = QuantizationPlan.Build(f, target, new PlanOptions { HasImatrix = withImatrix }); }
            catch (QuantizationException e) { error = e.Message; }
        }
        bool ok = false;
        string log = LlamaLog.Capture(() => ok = LlamaQuantize.Run(input, Path.Combine(models.Dir, "dry-run.gguf"), (int)target.FileType, false, Threads,
            im?.Weights, onlyCopy: target.IsCopy, dryRun: true));
        if (!ok)
        {
            Assert.True(error is not null, $"{context}: llama.cpp refused, Squeeze did not");
            return;
        }
        Assert.True(error is null, $"{context}: llama.cpp planned, Squeeze refused: {error}");
        var theirs = DryRunLine().Matches(log).ToDictionary(m => m.Groups[1].Value, m => m.Groups[3].Success ? m.Groups[3].Value : m.Groups[2].Value);
        Assert.Equal(plan!.Tensors.Count, theirs.Count);
        var diffs = plan.Tensors.Where(t => theirs[t.Name] != t.TargetType.Name())
            .Select(t => $"{t.Name}: llama.cpp {theirs[t.Name]}, squeeze {t.TargetType.Name()} ({t.Reason})").ToList();
        Assert.True(diffs.Count == 0, $"{context}: {diffs.Count} types differ:\n  " + string.Join("\n  ", diffs));
    }

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(Cases))]
    public void Mixture_is_identical_to_llama_cpp(string model, string fileType, bool withImatrix) =>
        Compare(model, fileType, new Settings { Imatrix = withImatrix }, $"{model} {fileType}{(withImatrix ? " --imatrix" : "")}");

    [Theory(SkipTestWithoutData = true)]
    [InlineData("Q4_K_M", @"\.([0-9]|1[01257]|31)\.attn_k=q4_k", "ffn_down=Q8_0", "attn_v=IQ4_XS")]
    [InlineData("IQ3_XS", @"blk\.3[0-5]\.ffn_(up|gate)=q5_k", @"blk\.0\.attn_v=q4_k", "OUTPUT=q6_k")]
    [InlineData("Q3_K_M", @"blk\.1\.attn_v=q3_k", @"\.(\d*[13579])\.ffn_down=q4_k")]
    [InlineData("Q5_K_S", @"token_embd=q8_0", @"attn_q\b=f16", @"\.3\.ffn_up=q5_0")]
    public void Tensor_type_rules_are_as_llama_cpp(string fileType, params string[] rules) =>
        Compare("qwen3x36-rows4", fileType, new Settings { Imatrix = true, TensorTypes = rules }, $"qwen3x36 {fileType} --tensor-type {string.Join(" ", rules)}");

    [Fact]
    public void Tensor_type_file_is_read_as_llama_quantize_reads_it()
    {
        string file = Path.Combine(models.Dir, "types.txt");
        File.WriteAllText(file, "  blk\\.[0-9]\\.ffn_down=q8_0\n\nattn_output=Q5_K\tblk\\.2[0-9]\\.attn_v=q3_K \r\n");
        var rules = TensorTypeRule.ParseFile(file);
        Assert.Equal(["blk\\.[0-9]\\.ffn_down=q8_0", "attn_output=q5_K", "blk\\.2[0-9]\\.attn_v=q3_K"], rules.Select(r => r.ToString()));
        Compare("qwen3x36-rows4", "Q4_K_S", new Settings { TensorTypes = ["blk\\.[0-9]\\.ffn_down=q8_0", "attn_output=Q5_K", "blk\\.2[0-9]\\.attn_v=q3_K"] },
            "qwen3x36 Q4_K_S --tensor-type-file");
    }

    [Theory(SkipTestWithoutData = true)]
    [InlineData("qwen3x36", "Q4_K_M", "q8_0", "q6_K", true, false)]
    [InlineData("qwen3x36", "IQ2_M", "q4_K", null, true, true)]
    [InlineData("qwen3x36", "Q2_K", null, "q3_K", false, false)]
    [InlineData("qwen3x36", "Q5_K_M", null, null, false, true)]
    [InlineData("stories260K", "Q4_K_M", "q6_K", "q8_0", true, false)]
    [InlineData("stories260K", "Q3_K_L", null, null, false, true)]
    public void Output_embedding_leave_and_pure_are_as_llama_cpp(string model, string fileType, string? outputType, string? embeddingType, bool quantizeOutput, bool pure) =>
        Compare(model, fileType, new Settings { Imatrix = true, OutputType = outputType, EmbeddingType = embeddingType, QuantizeOutput = quantizeOutput, Pure = pure,
            TensorTypes = pure ? ["ffn_up=q5_k"] : [] },
            $"{model} {fileType} output {outputType ?? "-"} embeddings {embeddingType ?? "-"}{(quantizeOutput ? "" : " --leave-output-tensor")}{(pure ? " --pure --tensor-type ffn_up=q5_k" : "")}");

    /// <summary>
    /// <c>--prune-layers</c>. llama.cpp at 815a2a591 (and master) renames the kept tensors but then loads their data by
    /// the new name (<c>load_data_for</c> looks the name up in the input), so a renumbered block is written with the
    /// data of the input block that had its new number, and the last blocks' data are lost. Squeeze writes each kept
    /// block's own data. So: names, order, types and metadata are compared with llama.cpp's pruned file; the data with
    /// llama.cpp's quantization of the input pruned beforehand (blocks removed and renumbered, the imatrix renamed to
    /// match, block_count left as it was so that the rules see the same layer count).
    /// </summary>
    [Theory(SkipTestWithoutData = true)]
    [InlineData("Q4_K_M", new[] { 3, 7, 8, 35 }, true)]
    [InlineData("Q3_K_M", new[] { 0 }, false)]
    [InlineData("IQ3_XXS", new[] { 30, 31, 32, 33, 34 }, true)]
    public void Pruning_layers_is_as_llama_cpp_meant(string fileType, int[] prune, bool withImatrix)
    {
        const string model = "qwen3x36-rows4";
        var target = LlamaFileTypes.Parse(fileType);
        string input = models.Model(model);
        var im = withImatrix ? models.Imatrix(model) : null;
        string context = $"{model} {fileType} --prune-layers {string.Join(",", prune)}";
        string tag = $"{Guid.NewGuid():N}";
        string ours = Path.Combine(models.Dir, $"{tag}-squeeze.gguf"), theirs = Path.Combine(models.Dir, $"{tag}-llama.gguf");
        var rules = new[] { TensorTypeRule.Parse(@"blk\.3\.attn_v=q8_0") };
        var imatrix = im is null ? null : ImportanceMatrix.Load(im.Path);
        QuantizationPlan plan;
        using (var f = GgufFile.Open(input))
        {
            plan = QuantizationPlan.Build(f, target, new PlanOptions { TensorTypes = rules, PruneLayers = prune, HasImatrix = withImatrix });
            ModelQuantizer.Quantize(f, plan, ours, new QuantizeOptions { Threads = Threads, Imatrix = imatrix }, cancellation: TestContext.Current.CancellationToken);
        }
        var oracleRules = rules.Select(r => (r.Pattern, (int)r.Type)).ToList();
        Assert.True(LlamaQuantize.Run(input, theirs, (int)target.FileType, false, Threads, im?.Weights, im?.Overrides, tensorTypes: oracleRules, pruneLayers: prune),
            $"{context}: llama.cpp failed");
        GgufAssert.SameFile(theirs, ours, context, compareData: false);

        // The input pruned beforehand, and its imatrix renamed to the new block numbers.
        string prePruned = Path.Combine(models.Dir, $"{tag}-pruned-input.gguf"), reference = Path.Combine(models.Dir, $"{tag}-reference.gguf");
        var renamed = new Dictionary<string, string>();
        using (var f = GgufFile.Open(input))
        {
            var w = new GgufWriter();
            foreach (var kv in f.Metadata) w.Set(kv.Key, kv.Value);
            foreach (var tp in plan.Tensors)
            {
                renamed[tp.Tensor.Name] = tp.Name;
                var t = f.FindTensor(tp.Tensor.Name)!;
                w.AddTensor(tp.Name, t.Type, t.Shape, s => f.CopyTensorTo(t, s));
            }
            w.WriteTo(prePruned);
        }
        var weights = im?.Weights.Where(kv => renamed.ContainsKey(kv.Key)).ToDictionary(kv => renamed[kv.Key], kv => kv.Value);
        var overrides = im?.Overrides.Select(o => o.Key == GgufKeys.Quantize.ImatrixEntriesCount ? o with { Int = im.Weights.Count } : o).ToList();
        Assert.True(LlamaQuantize.Run(prePruned, reference, (int)target.FileType, false, Threads, weights, overrides, tensorTypes: oracleRules), $"{context}: llama.cpp failed on the pre-pruned input");
        // llama.cpp's pruned file sets block_count last; do the same to the reference.
        string expected = Path.Combine(models.Dir, $"{tag}-expected.gguf");
        using (var r = GgufFile.Open(reference))
        {
            var w = new GgufWriter();
            foreach (var kv in r.Metadata) w.Set(kv.Key, kv.Value);
            w.Remove(plan.BlockCount!.Value.Key);
            w.Set(plan.BlockCount.Value.Key, GgufValue.UInt32(plan.BlockCount.Value.Value));
            foreach (var t in r.Tensors) w.AddTensor(t.Name, t.Type, t.Shape, s => r.CopyTensorTo(t, s));
            w.WriteTo(expected);
        }
        GgufAssert.SameFile(expected, ours, context + " (data)");
        using (var o = GgufFile.Open(ours))
            Assert.Equal(36 - prune.Length, (int)o[plan.BlockCount.Value.Key].AsInt64());
    }

    [Fact]
    public void Metadata_overrides_are_as_llama_cpp()
    {
        var overrides = new[] { "general.name=str:renamed", "qwen3.context_length=int:-4096", "qwen3.rope.freq_base=float:5e5", "general.flag=bool:true", "general.file_type=int:99" }
            .Select(MetadataOverride.Parse).ToArray();
        Compare("qwen3x36-rows4", "Q4_K_S", new Settings { Imatrix = true, Overrides = overrides }, "qwen3x36 Q4_K_S --override-kv ...");
    }

    [Fact]
    public void Imatrix_include_filter_changes_the_mixture_as_llama_cpp()
    {
        // With only ffn_ entries, attn tensors are quantized without weights; IQ4_XS's ffn_down rule sees an imatrix.
        Compare("qwen3x36-rows4", "IQ4_XS", new Settings { Imatrix = true, IncludeWeights = ["ffn_"] }, "qwen3x36 IQ4_XS --include-weights ffn_");
    }

    private void Compare(string model, string fileType, Settings s, string context)
    {
        var target = LlamaFileTypes.Parse(fileType);
        string input = models.Model(model);
        var im = s.Imatrix ? models.Imatrix(model) : null;
        string tag = $"{Guid.NewGuid():N}";
        string ours = Path.Combine(models.Dir, $"{tag}-squeeze.gguf"), theirs = Path.Combine(models.Dir, $"{tag}-llama.gguf");
        ImportanceMatrix? imatrix = im is null ? null : ImportanceMatrix.Load(im.Path).Filtered(s.IncludeWeights, []);
        var kept = im?.Weights.Where(kv => s.IncludeWeights.Length == 0 || s.IncludeWeights.Any(kv.Key.Contains)).ToDictionary(kv => kv.Key, kv => kv.Value);
        var rules = s.TensorTypes.Select(TensorTypeRule.Parse).ToList();
        var options = ToPlanOptions(s, rules, imatrix);

        string? squeezeError = null;
        var clock = Stopwatch.StartNew();
        bool refusedForImatrix = false;
        using (var f = GgufFile.Open(input))
        {
            try
            {
                var plan = QuantizationPlan.Build(f, target, options);
                refusedForImatrix = imatrix is null && plan.Tensors.Any(t => t.RequiresImatrix);
                ModelQuantizer.Quantize(f, plan, ours, new QuantizeOptions { Threads = Threads, Imatrix = imatrix }, cancellation: TestContext.Current.CancellationToken);
            }
            catch (QuantizationException ex) { squeezeError = ex.Message; }
        }
        var squeezeTime = clock.Elapsed;
        clock.Restart();

        var overrides = s.Overrides.Select(ToOracle).ToList();
        if (im is not null && kept!.Count > 0)
            overrides.AddRange(im.Overrides.Select(x => x.Key == GgufKeys.Quantize.ImatrixEntriesCount ? x with { Int = kept.Count } : x));
        bool llamaOk = LlamaQuantize.Run(input, theirs, (int)target.FileType, s.Pure, Threads, kept is { Count: > 0 } ? kept : null, overrides,
            s.QuantizeOutput, (int?)options.OutputTensorType, (int?)options.TokenEmbeddingType,
            tensorTypes: rules.Select(r => (r.Pattern, (int)r.Type)).ToList(), pruneLayers: s.Prune, onlyCopy: target.IsCopy);
        TestContext.Current.TestOutputHelper?.WriteLine($"{context}: squeeze {squeezeTime.TotalSeconds:0.00} s, llama.cpp {clock.Elapsed.TotalSeconds:0.00} s");

        if (!llamaOk)
        {
            Assert.True(squeezeError is not null, $"{context}: llama.cpp refused to quantize, Squeeze did not");
            Assert.False(File.Exists(ours));
            return;
        }
        Assert.True(squeezeError is null, $"{context}: llama.cpp quantized, Squeeze refused: {squeezeError}");
        Assert.False(refusedForImatrix);
        GgufAssert.SameFile(theirs, ours, context);
        File.Delete(ours);
        File.Delete(theirs);
    }

    private static PlanOptions ToPlanOptions(Settings s, IReadOnlyList<TensorTypeRule> rules, ImportanceMatrix? imatrix) => new()
        {
            Pure = s.Pure,
            QuantizeOutput = s.QuantizeOutput,
            OutputTensorType = s.OutputType is null ? null : GgmlTypes.TryParse(s.OutputType, out var o) ? o : throw new ArgumentException(s.OutputType),
            TokenEmbeddingType = s.EmbeddingType is null ? null : GgmlTypes.TryParse(s.EmbeddingType, out var e) ? e : throw new ArgumentException(s.EmbeddingType),
            TensorTypes = rules,
            PruneLayers = s.Prune,
            MetadataOverrides = s.Overrides,
            HasImatrix = imatrix is { EntryCount: > 0 },
        };

    private static LlamaQuantize.KvOverride ToOracle(MetadataOverride o) => o.Kind switch
    {
        MetadataOverrideKind.Int => new(o.Key, Int: o.Int),
        MetadataOverrideKind.Float => new(o.Key, Float: o.Float),
        MetadataOverrideKind.Bool => new(o.Key, Bool: o.Bool),
        _ => new(o.Key, Str: o.Str),
    };
}
