using System.Text;
using System.Text.Json;
using Squeeze.Conversion;
using Squeeze.Gguf;
using Squeeze.Models;
using Squeeze.Numerics;
using Squeeze.Oracle.Tests.Models;
using Squeeze.Oracle.Tests.Tokenizers;
using Squeeze.Quants;
using Squeeze.Tests;
using Squeeze.Tokenizers;
using Xunit;

namespace Squeeze.Oracle.Tests.Conversion;

/// <summary>Synthetic checkpoints written once for all conversion tests (conversions are cached by name).</summary>
public sealed class ConvertedModels : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("squeeze-convert-oracle-").FullName;
    private readonly Dictionary<string, string> _folders = [];
    private readonly Dictionary<string, string> _outputs = [];
    private readonly Lock _lock = new();

    public static readonly HfCheckpoints.Spec Qwen3 = new("Qwen3ForCausalLM");
    public static readonly HfCheckpoints.Spec Llama = new("LlamaForCausalLM");
    public static readonly HfCheckpoints.Spec Qwen2 = new("Qwen2ForCausalLM");
    /// <summary>The Llama checkpoint's weights as a Qwen2 model with zero Q/K/V biases: NEOX RoPE on unpermuted rows.</summary>
    public static readonly HfCheckpoints.Spec Qwen2AsLlama = new("Qwen2ForCausalLM", ZeroBias: true);

    public static readonly Dictionary<string, (HfCheckpoints.Spec Spec, string Folder)> Checkpoints = new()
    {
        ["qwen3"] = (Qwen3, "Tiny-Qwen3-Instruct"),
        ["llama"] = (Llama, "tiny-llama"),
        ["qwen2"] = (Qwen2, "tiny-qwen2"),
        ["qwen2-as-llama"] = (Qwen2AsLlama, "tiny-qwen2-zero-bias"),
    };

    /// <summary>The checkpoint folder of <paramref name="key"/>, written on first use.</summary>
    public string Folder(string key)
    {
        lock (_lock)
        {
            if (_folders.TryGetValue(key, out var f)) return f;
            var (spec, name) = Checkpoints[key];
            string folder = Path.Combine(_root, name);
            HfCheckpoints.Write(folder, spec, TestData.Require("tokenizers/qwen3"));
            if (key == "qwen3")
            {
                File.WriteAllText(Path.Combine(folder, "README.md"),
                    "---\nlicense: apache-2.0\nbase_model: Qwen/Qwen3-8B-Base\nlanguage:\n- en\npipeline_tag: text-generation\ntags:\n- chat\n---\n# Tiny Qwen3\n");
                File.WriteAllText(Path.Combine(folder, "generation_config.json"),
                    "{\"bos_token_id\": 151643, \"do_sample\": true, \"eos_token_id\": [151645, 151643], \"pad_token_id\": 151643, " +
                    "\"temperature\": 0.6, \"top_k\": 20, \"top_p\": 0.95, \"transformers_version\": \"4.51.0\"}");
            }
            return _folders[key] = folder;
        }
    }

    /// <summary>The GGUF of <paramref name="key"/> converted with <paramref name="outType"/> (once).</summary>
    public string Converted(string key, ConvertOutType outType, bool vocabOnly = false)
    {
        string folder = Folder(key);
        lock (_lock)
        {
            string id = $"{key}-{outType}{(vocabOnly ? "-vocab" : "")}";
            if (_outputs.TryGetValue(id, out var p)) return p;
            string path = Path.Combine(_root, id + ".gguf");
            HfConverter.Convert(folder, path, new ConvertOptions { OutType = outType, VocabOnly = vocabOnly });
            return _outputs[id] = path;
        }
    }

    public string Root => _root;

    public void Dispose() => Directory.Delete(_root, recursive: true);
}

[CollectionDefinition(Name)]
public sealed class ConvertCollection : ICollectionFixture<ConvertedModels>
{
    public const string Name = "converted models";
}

/// <summary>
/// The converter against llama.cpp: converted files load there, give the logits Squeeze gives, tokenize as the
/// reference vocabulary does, and carry the metadata convert_hf_to_gguf.py writes.
/// </summary>
[Collection(ConvertCollection.Name)]
public sealed class ConvertOracleTests(ConvertedModels models)
{
    private const int Bos = 151643;

    public static TheoryData<string, ConvertOutType> LogitCases() => new()
    {
        { "qwen3", ConvertOutType.F32 },
        { "qwen3", ConvertOutType.F16 },
        { "llama", ConvertOutType.F32 },
        { "qwen2", ConvertOutType.F32 },
    };

    private static float[] OracleLogits(string path, int[] tokens)
    {
        using var oracle = new OracleModel(path, contextSize: 64, batchSize: tokens.Length);
        return oracle.Decode(tokens, 0, allLogits: true);
    }

    [Theory]
    [MemberData(nameof(LogitCases))]
    public void Converted_model_loads_in_llama_cpp_and_its_logits_equal_squeezes(string key, ConvertOutType outType)
    {
        string path = models.Converted(key, outType);
        var tokens = LogitsTests.Prompt(ConvertedModels.Checkpoints[key].Spec.VocabSize, 16, Bos, seed: 3);
        var expected = OracleLogits(path, tokens);
        using var model = TransformerModel.Load(path);
        var actual = new Transformer(model, contextSize: 64, threads: 2).Evaluate(tokens);
        double err = LogitsTests.RelativeError(expected, actual);
        Assert.True(err <= 1e-3, $"{key} {outType}: max|Δ|/max|logit| = {err:E3}");
        // The logits are far from uniform, so agreement means something.
        Assert.True(expected.Max() - expected.Min() > 10, "logits spread");
    }

    /// <summary>
    /// The Q/K permutation checked against an independent reference: the same weights as a Qwen2 model (zero biases)
    /// are converted without any permutation and run with NEOX RoPE, which rotates (x_i, x_{i+d/2}) pairs exactly as
    /// Hugging Face's rotate_half does for Llama. llama.cpp's logits on the two files must agree; with the Q/K rows
    /// left unpermuted they do not (the control), so the agreement tests the permutation.
    /// </summary>
    [Fact]
    public void Llama_permutation_reproduces_hugging_face_rope()
    {
        var tokens = LogitsTests.Prompt(ConvertedModels.Llama.VocabSize, 16, Bos, seed: 4);
        var reference = OracleLogits(models.Converted("qwen2-as-llama", ConvertOutType.F32), tokens);
        string llama = models.Converted("llama", ConvertOutType.F32);
        double err = LogitsTests.RelativeError(reference, OracleLogits(llama, tokens));
        Assert.True(err <= 1e-4, $"llama vs NEOX reference: {err:E3}");

        // Control: undo the permutation in a copy of the file.
        string unpermuted = Path.Combine(models.Root, "llama-unpermuted.gguf");
        using (var file = GgufFile.Open(llama))
        {
            var w = new GgufWriter();
            foreach (var kv in file.Metadata) w.Set(kv.Key, kv.Value);
            foreach (var t in file.Tensors)
            {
                int heads = t.Name.EndsWith("attn_q.weight", StringComparison.Ordinal) ? 4 : t.Name.EndsWith("attn_k.weight", StringComparison.Ordinal) ? 2 : 0;
                w.AddTensor(t.Name, t.Type, t.Shape, s =>
                {
                    if (heads == 0) { file.CopyTensorTo(t, s); return; }
                    var rows = new byte[t.RowCount][];
                    for (long r = 0; r < t.RowCount; r++) rows[HfConverter.PermutedRow(r, t.RowCount, heads)] = file.GetRows(t, r, 1).ToArray();
                    foreach (var row in rows) s.Write(row);
                });
            }
            w.WriteTo(unpermuted);
        }
        double control = LogitsTests.RelativeError(reference, OracleLogits(unpermuted, tokens));
        Assert.True(control > 1e-2, $"without the permutation the logits should differ, but the error is only {control:E3}");
    }

    [Fact]
    public void The_vocabulary_tokenizes_llama_cpps_qwen2_cases_in_llama_cpp_and_in_squeeze()
    {
        string path = models.Converted("qwen3", ConvertOutType.Auto, vocabOnly: true);
        using var vocab = OracleVocab.Load(path);
        Tokenizer ours;
        using (var f = GgufFile.Open(path))
        {
            Assert.Equal("qwen2", f[GgufKeys.Tokenizer.Pre].AsString());
            Assert.Empty(f.Tensors);
            ours = Tokenizer.FromGguf(f);
        }
        var cases = Vocabs.Cases("qwen2");
        Assert.True(cases.Count > 20);
        foreach (var (text, ids) in cases)
        {
            Assert.True(ids.SequenceEqual(vocab.Tokenize(text, addSpecial: true, parseSpecial: false)), $"llama.cpp on '{Vocabs.Show(text)}'");
            Assert.True(ids.SequenceEqual(ours.Encode(text, addSpecial: true, parseSpecial: false)), $"Squeeze on '{Vocabs.Show(text)}'");
        }
        Assert.Equal(151645, vocab.Eos);
        Assert.False(vocab.AddBos);
    }

    // ---- metadata --------------------------------------------------------------------------------------------

    private static object U32(long v) => (uint)v;

    /// <summary>
    /// The keys convert_hf_to_gguf.py writes, in its order, read from its source at llama.cpp 815a2a591:
    /// ModelBase.prepare_metadata (general.architecture from the GGUFWriter, general.type, gguf-py Metadata's keys:
    /// sampling from generation_config.json, name/finetune/basename from the folder name, size label, licence, base
    /// model, tags (tags then pipeline_tag), languages), TextModel.set_gguf_parameters (block count, context,
    /// embedding, feed-forward, heads, kv heads, rope theta, rms eps, key/value length when the transformers config has
    /// head_dim, file type), LlamaModel's vocab size and rope dimensions, the quantization version, then
    /// _set_vocab_gpt2 and SpecialVocab (ids from tokenizer_config.json in bos, eos, unk, sep, pad order, then
    /// config.json's, add_bos, chat template).
    /// </summary>
    private static List<(string Key, object? Value)> ExpectedMetadata(string key, uint fileType)
    {
        var (spec, _) = ConvertedModels.Checkpoints[key];
        string a = key == "llama" ? "llama" : key.StartsWith("qwen2", StringComparison.Ordinal) ? "qwen2" : "qwen3";
        var m = new List<(string, object?)> { ("general.architecture", a), ("general.type", "model") };
        if (key == "qwen3")
            m.AddRange([
                ("general.sampling.top_k", 20), ("general.sampling.top_p", 0.95f), ("general.sampling.temp", 0.6f),
                ("general.name", "Tiny Qwen3 Instruct"), ("general.finetune", "Instruct"), ("general.basename", "Tiny-Qwen3"),
                ("general.size_label", "20M"), ("general.license", "apache-2.0"), ("general.base_model.count", U32(1)),
                ("general.base_model.0.name", "Qwen3 8B Base"), ("general.base_model.0.organization", "Qwen"),
                ("general.base_model.0.repo_url", "https://huggingface.co/Qwen/Qwen3-8B-Base"),
                ("general.tags", new[] { "chat", "text-generation" }), ("general.languages", new[] { "en" }),
            ]);
        else m.AddRange([("general.name", key == "llama" ? "Tiny Llama" : "Tiny Qwen2"), ("general.size_label", "20M")]);
        m.AddRange([
            ($"{a}.block_count", U32(spec.Layers)), ($"{a}.context_length", U32(4096)), ($"{a}.embedding_length", U32(spec.Hidden)),
            ($"{a}.feed_forward_length", U32(spec.FeedForward)), ($"{a}.attention.head_count", U32(spec.Heads)),
            ($"{a}.attention.head_count_kv", U32(spec.KvHeads)), ($"{a}.rope.freq_base", 1e6f), ($"{a}.attention.layer_norm_rms_epsilon", 1e-6f),
        ]);
        if (a != "qwen2") m.AddRange([($"{a}.attention.key_length", U32(spec.HeadDim)), ($"{a}.attention.value_length", U32(spec.HeadDim))]);
        m.Add(("general.file_type", fileType));
        if (a == "llama") m.AddRange([("llama.vocab_size", U32(spec.VocabSize)), ("llama.rope.dimension_count", U32(spec.HeadDim))]);
        m.Add(("general.quantization_version", U32(2)));
        if (a == "llama") m.Add(("tokenizer.ggml.add_space_prefix", false));
        m.AddRange([
            ("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "qwen2"), ("tokenizer.ggml.tokens", null), ("tokenizer.ggml.token_type", null),
            ("tokenizer.ggml.merges", null), ("tokenizer.ggml.eos_token_id", U32(151645)), ("tokenizer.ggml.padding_token_id", U32(151643)),
            ("tokenizer.ggml.bos_token_id", U32(151643)), ("tokenizer.ggml.add_bos_token", false), ("tokenizer.chat_template", null),
        ]);
        return m;
    }

    public static TheoryData<string, ConvertOutType, uint> MetadataCases() => new()
    {
        { "qwen3", ConvertOutType.F32, 0 },
        { "qwen3", ConvertOutType.Auto, 32 },
        { "llama", ConvertOutType.F32, 0 },
        { "qwen2", ConvertOutType.F32, 0 },
    };

    [Theory]
    [MemberData(nameof(MetadataCases))]
    public void Metadata_keys_and_values_are_those_convert_hf_to_gguf_writes(string key, ConvertOutType outType, uint fileType)
    {
        using var f = GgufFile.Open(models.Converted(key, outType));
        var expected = ExpectedMetadata(key, fileType);
        Assert.Equal(expected.Select(e => e.Key), f.Metadata.Select(kv => kv.Key));
        foreach (var (k, v) in expected)
        {
            var actual = f[k];
            switch (v)
            {
                case null: break;
                case string[] strings: Assert.Equal(strings, actual.AsArray().As<string>()); break;
                case int i: Assert.Equal(GgufValueType.Int32, actual.Type); Assert.Equal(i, actual.Value); break;
                default: Assert.Equal(v, actual.Value); break;
            }
        }

        // The vocabulary: tokens padded to vocab_size, types as the converter assigns them, merges with U+0120 spaces.
        var tokens = f[GgufKeys.Tokenizer.Tokens].AsArray().As<string>();
        var types = f[GgufKeys.Tokenizer.TokenType].AsArray().As<int>();
        Assert.Equal(151936, tokens.Length);
        Assert.Equal(GgufValueType.Int32, f[GgufKeys.Tokenizer.TokenType].AsArray().ElementType);
        Assert.Equal(("!", 1), (tokens[0], types[0]));
        Assert.Equal(("<|im_end|>", 3), (tokens[151645], types[151645]));
        Assert.Equal(("<|fim_prefix|>", 3), (tokens[151659], types[151659])); // not special, but looks special
        Assert.Equal(("<think>", 4), (tokens[151667], types[151667]));       // added, not special: user-defined
        Assert.Equal(("[PAD151669]", 5), (tokens[151669], types[151669]));
        var merges = f[GgufKeys.Tokenizer.Merges].AsArray().As<string>();
        Assert.Equal(151387, merges.Length);
        Assert.Equal("\u0120 \u0120", merges[0]);
        string config = File.ReadAllText(Path.Combine(TestData.Require("tokenizers/qwen3"), "tokenizer_config.json"));
        Assert.Equal(JsonDocument.Parse(config).RootElement.GetProperty("chat_template").GetString(), f[GgufKeys.Tokenizer.ChatTemplate].AsString());
    }

    [Fact]
    public void Tensors_come_in_shard_then_name_order_with_gguf_names_shapes_and_types()
    {
        var spec = ConvertedModels.Qwen3;
        using var f = GgufFile.Open(models.Converted("qwen3", ConvertOutType.F16));
        var all = HfCheckpoints.Tensors(spec);
        int perShard = (all.Count + 1) / 2;
        var order = all.Take(perShard).Select(t => t.Name).Order(StringComparer.Ordinal)
            .Concat(all.Skip(perShard).Select(t => t.Name).Order(StringComparer.Ordinal)).ToList();
        var expectedNames = order.Select(GgufName).ToList();
        Assert.Equal(expectedNames, f.Tensors.Select(t => t.Name));
        foreach (var t in f.Tensors)
        {
            var source = all.Single(s => GgufName(s.Name) == t.Name);
            Assert.Equal(source.Shape.Reverse(), t.Shape);
            Assert.Equal(t.Shape.Count == 1 ? GgmlType.F32 : GgmlType.F16, t.Type);
        }
    }

    /// <summary>An independent spelling of the name map (gguf-py tensor_mapping.py) for the test.</summary>
    private static string GgufName(string hf)
    {
        if (hf == "model.embed_tokens.weight") return "token_embd.weight";
        if (hf == "model.norm.weight") return "output_norm.weight";
        if (hf == "lm_head.weight") return "output.weight";
        var parts = hf.Split('.');
        string inner = string.Join('.', parts[3..^1]);
        string name = inner switch
        {
            "input_layernorm" => "attn_norm", "post_attention_layernorm" => "ffn_norm",
            "self_attn.q_proj" => "attn_q", "self_attn.k_proj" => "attn_k", "self_attn.v_proj" => "attn_v", "self_attn.o_proj" => "attn_output",
            "self_attn.q_norm" => "attn_q_norm", "self_attn.k_norm" => "attn_k_norm",
            "mlp.gate_proj" => "ffn_gate", "mlp.up_proj" => "ffn_up", "mlp.down_proj" => "ffn_down",
            _ => throw new ArgumentException(hf),
        };
        return $"blk.{parts[2]}.{name}.{parts[^1]}";
    }

    [Fact]
    public void Q8_0_weights_are_ggmls_bytes_and_norms_stay_f32()
    {
        var spec = ConvertedModels.Qwen3;
        string path = models.Converted("qwen3", ConvertOutType.Q8_0);
        Assert.NotNull(OracleModel.Probe(path));
        using var f = GgufFile.Open(path);
        Assert.Equal(7u, f[GgufKeys.General.FileType].Value);
        foreach (var name in new[] { "blk.1.attn_k.weight", "blk.0.ffn_down.weight", "output.weight" })
        {
            var t = f.FindTensor(name)!;
            Assert.Equal(GgmlType.Q8_0, t.Type);
            string hf = name switch { "output.weight" => "lm_head.weight", "blk.1.attn_k.weight" => "model.layers.1.self_attn.k_proj.weight", _ => "model.layers.0.mlp.down_proj.weight" };
            var shape = HfCheckpoints.Tensors(spec).Single(s => s.Name == hf).Shape;
            // The checkpoint's BF16 values, widened exactly, as torch's .to(float32) does before gguf-py quantizes.
            var values = HfCheckpoints.Values(hf, shape, spec.Seed).Select(x => Bf16.ToFloat(Bf16.FromFloat(x))).ToArray();
            var expected = Oracle.Quantize(GgmlType.Q8_0, values, (int)shape[0], (int)shape[1]);
            Assert.True(expected.AsSpan().SequenceEqual(f.GetTensorBytes(t)), $"{name}: Q8_0 bytes differ from ggml's");
        }
        Assert.Equal(GgmlType.F32, f.FindTensor("blk.0.attn_q_norm.weight")!.Type);
        Assert.Equal(GgmlType.F32, f.FindTensor("output_norm.weight")!.Type);
    }

    [Fact]
    public void Bf16_from_a_bf16_checkpoint_keeps_the_bytes()
    {
        var spec = ConvertedModels.Qwen3;
        using var f = GgufFile.Open(models.Converted("qwen3", ConvertOutType.BF16));
        var t = f.FindTensor("blk.0.attn_q.weight")!;
        Assert.Equal(GgmlType.BF16, t.Type);
        var values = HfCheckpoints.Values("model.layers.0.self_attn.q_proj.weight", [64, 64], spec.Seed);
        Assert.True(HfCheckpoints.Encode("BF16", values).AsSpan().SequenceEqual(f.GetTensorBytes(t)));
        Assert.Equal(32u, f[GgufKeys.General.FileType].Value);
    }

    [Fact]
    public void Conversion_streams_tensor_data_and_reports_progress()
    {
        string folder = models.Folder("qwen3");
        string vocabOnly = Path.Combine(models.Root, "stream-vocab.gguf"), full = Path.Combine(models.Root, "stream-full.gguf");
        long before = GC.GetAllocatedBytesForCurrentThread();
        HfConverter.Convert(folder, vocabOnly, new ConvertOptions { VocabOnly = true }, cancellation: TestContext.Current.CancellationToken);
        long vocabAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
        var reports = new List<ConvertProgress>();
        before = GC.GetAllocatedBytesForCurrentThread();
        var summary = HfConverter.Convert(folder, full, new ConvertOptions { OutType = ConvertOutType.F32 }, new Reporter(reports.Add), TestContext.Current.CancellationToken);
        long fullAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
        long tensorBytes = summary.Tensors.Sum(t => GgmlTypes.RowSize(t.Type, t.Shape[0]) * t.Shape.Skip(1).Aggregate(1L, (x, y) => x * y));
        Assert.True(tensorBytes > 70_000_000);
        // The tensor data (78 MB) is converted in chunks of a few MB: converting it costs far less than holding it would.
        Assert.True(fullAllocated - vocabAllocated < tensorBytes / 4, $"allocated {fullAllocated - vocabAllocated:N0} bytes more than the vocabulary-only run");
        Assert.Equal(tensorBytes, reports[^1].BytesDone);
        Assert.Equal(tensorBytes, reports[^1].BytesTotal);
        Assert.True(reports.Zip(reports.Skip(1)).All(p => p.First.BytesDone <= p.Second.BytesDone));
        File.Delete(full);
        File.Delete(vocabOnly);
    }

    private sealed class Reporter(Action<ConvertProgress> report) : IProgress<ConvertProgress>
    {
        public void Report(ConvertProgress value) => report(value);
    }
}
