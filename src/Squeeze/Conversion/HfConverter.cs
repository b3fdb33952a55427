using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Squeeze.Gguf;
using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Conversion;

/// <summary>convert_hf_to_gguf.py's <c>--outtype</c>.</summary>
public enum ConvertOutType
{
    /// <summary>The checkpoint's own 16-bit type (the first 2-D tensor's: BF16 or F16), else F16.</summary>
    Auto,
    F32,
    F16,
    BF16,
    Q8_0,
}

/// <summary>What <see cref="HfConverter.Convert"/> does.</summary>
public sealed record ConvertOptions
{
    public ConvertOutType OutType { get; init; } = ConvertOutType.Auto;

    /// <summary>Write only the metadata and vocabulary, no tensors.</summary>
    public bool VocabOnly { get; init; }
}

/// <summary>Progress of a conversion: bytes of tensor data written so far.</summary>
public readonly record struct ConvertProgress(int TensorIndex, int TensorCount, string TensorName, GgmlType Type, long BytesDone, long BytesTotal);

/// <summary>What a conversion wrote.</summary>
/// <param name="Architecture">The GGUF architecture.</param>
/// <param name="FileType">llama.cpp's file type written as <c>general.file_type</c> (0 F32, 1 F16, 7 Q8_0, 32 BF16).</param>
/// <param name="Tensors">The tensors in file order: name, type and GGUF shape.</param>
/// <param name="Parameters">Weights counted as gguf-py counts them.</param>
/// <param name="Bytes">Size of the file.</param>
/// <param name="Pre">The pre-tokenizer written.</param>
public sealed record ConvertSummary(string Architecture, uint FileType, IReadOnlyList<(string Name, GgmlType Type, long[] Shape)> Tensors,
    long Parameters, long Bytes, string Pre);

/// <summary>
/// Converts a Hugging Face checkpoint (config.json, safetensors weights, tokenizer.json) to GGUF the way llama.cpp's
/// convert_hf_to_gguf.py does (at llama.cpp 815a2a591): the same tensor names, order, types and metadata keys and
/// values, for LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM and Qwen3MoeForCausalLM.
/// </summary>
/// <remarks>
/// Weights stay memory-mapped and each tensor is converted in chunks of rows while the file is written, so memory is
/// bounded by a few megabytes of buffers whatever the model's size. The output is written atomically: a failed
/// conversion leaves no file under the output name. Every check on the checkpoint (shards, shapes, names, tokenizer)
/// runs before the output is opened.
/// </remarks>
public static class HfConverter
{
    /// <summary>gguf-py's <c>GGML_QUANT_VERSION</c>.</summary>
    public const uint QuantizationVersion = 2;

    /// <summary>Converts the model in <paramref name="folder"/> to <paramref name="outputPath"/>.</summary>
    /// <exception cref="InvalidInputException">The checkpoint is incomplete, inconsistent or not supported.</exception>
    public static ConvertSummary Convert(string folder, string outputPath, ConvertOptions options,
        IProgress<ConvertProgress>? progress = null, CancellationToken cancellation = default)
    {
        var plan = Plan(folder, options);
        using (plan.Checkpoint)
        {
            cancellation.ThrowIfCancellationRequested();
            long total = plan.Tensors.Sum(t => t.ByteSize);
            long done = 0;
            int index = 0;
            foreach (var t in plan.Tensors)
            {
                int i = index++;
                plan.Writer.AddTensor(t.Name, t.Type, t.GgufShape, stream =>
                {
                    t.Write(stream, cancellation, written =>
                    {
                        done += written;
                        progress?.Report(new ConvertProgress(i, plan.Tensors.Count, t.Name, t.Type, done, total));
                    });
                });
            }
            long bytes = plan.Writer.WriteTo(outputPath);
            return new ConvertSummary(plan.Arch.GgufName, plan.FileType,
                plan.Tensors.Select(t => (t.Name, t.Type, t.GgufShape)).ToList(), plan.Parameters, bytes, plan.Vocab.Pre);
        }
    }

    internal sealed record ConversionPlan(HfArchitecture Arch, SafetensorsCheckpoint? Checkpoint, GgufWriter Writer,
        List<OutputTensor> Tensors, uint FileType, long Parameters, HfVocab Vocab) : IDisposable
    {
        public void Dispose() => Checkpoint?.Dispose();
    }

    /// <summary>Reads and checks everything, and builds the metadata; opens no output.</summary>
    internal static ConversionPlan Plan(string folder, ConvertOptions options)
    {
        if (!Directory.Exists(folder)) throw new InvalidInputException($"model folder not found: {folder}");
        var config = HfConfig.Load(folder);
        var arch = HfArchitecture.For(config.Architecture);
        var h = Hyperparameters.From(config, arch);

        bool hasWeights = Directory.EnumerateFiles(folder, "model*.safetensors").Any() || File.Exists(Path.Combine(folder, SafetensorsCheckpoint.IndexFileName));
        if (!hasWeights && !options.VocabOnly)
            throw new InvalidInputException($"no model.safetensors or model-*.safetensors in {folder} (only safetensors checkpoints are read)");
        SafetensorsCheckpoint? checkpoint = hasWeights ? SafetensorsCheckpoint.Open(folder) : null;
        try
        {
            uint fileType = FileTypeFor(options.OutType, checkpoint);
            var tensors = options.VocabOnly ? [] : PlanTensors(checkpoint!, config, arch, h, fileType);
            var vocab = LoadVocab(folder, arch, h);
            foreach (var t in tensors.Where(t => t.Name is "token_embd.weight" or "output.weight"))
                if (t.RowCount != vocab.Tokens.Length)
                    throw new InvalidInputException($"{t.Name} has {t.RowCount} rows but the vocabulary has {vocab.Tokens.Length} tokens");

            // Parameter counts as GGUFWriter.get_total_parameter_count: expert tensors count per expert.
            long totalParams = 0, sharedParams = 0, expertParams = 0, expertSum = 0;
            int expertTensors = 0;
            foreach (var t in tensors)
            {
                long size = t.GgufShape.Aggregate(1L, (a, b) => a * b);
                if (t.Name.Contains("_exps.", StringComparison.Ordinal) && t.GgufShape.Length >= 3)
                {
                    long experts = t.GgufShape[^1];
                    expertParams += size / experts;
                    expertSum += experts;
                    expertTensors++;
                }
                else sharedParams += size;
                totalParams += size;
            }
            int expertCount = expertTensors > 0 ? (int)(expertSum / expertTensors) : 0;

            var w = new GgufWriter();
            string a = arch.GgufName;
            w.Set(GgufKeys.General.Architecture, GgufValue.String(a));
            w.Set(GgufKeys.General.Type, GgufValue.String("model"));
            var meta = ModelMetadata.Load(folder, totalParams);
            meta.Name ??= Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar));
            if (meta.SizeLabel is null && totalParams > 0) meta.SizeLabel = ModelMetadata.SizeLabelOf(totalParams, sharedParams, expertParams, expertCount);
            meta.WriteTo(w);
            WriteHyperparameters(w, config, arch, h, fileType);
            w.Set(GgufKeys.General.QuantizationVersion, GgufValue.UInt32(QuantizationVersion));
            // LlamaModel.set_vocab writes the space-prefix flag before the vocabulary; granite-sized vocabularies never add BOS.
            if (arch == HfArchitecture.Llama && TokenizerConfigBool(folder, "add_prefix_space") is bool prefix)
                w.Set(GgufKeys.Tokenizer.AddPrefix, GgufValue.Bool(prefix));
            vocab.WriteTo(w);
            if (arch == HfArchitecture.Llama && h.VocabSize == 49152) w.Set(GgufKeys.Tokenizer.AddBos, GgufValue.Bool(false));
            return new ConversionPlan(arch, checkpoint, w, tensors, fileType, totalParams, vocab);
        }
        catch
        {
            checkpoint?.Dispose();
            throw;
        }
    }

    private static bool? TokenizerConfigBool(string folder, string key)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        var tc = HfConfig.ReadJsonObject(path);
        return tc.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;
    }

    private static HfVocab LoadVocab(string folder, HfArchitecture arch, Hyperparameters h)
    {
        if (arch.TriesSentencePiece && File.Exists(Path.Combine(folder, "tokenizer.model")))
            throw new InvalidInputException("the model has a SentencePiece tokenizer.model, which Squeeze does not convert yet (it converts byte-level BPE tokenizer.json vocabularies)");
        if (arch == HfArchitecture.Llama && File.Exists(Path.Combine(folder, "tokenizer.json")))
        {
            // LlamaHfVocab takes a SentencePiece-style BPE (byte fallback, a Sequence decoder) before the GPT-2 path.
            var tok = HfConfig.ReadJsonObject(Path.Combine(folder, "tokenizer.json"));
            if (tok.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.Object
                && m.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True
                && !(m.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True)
                && tok.TryGetProperty("decoder", out var dec) && dec.ValueKind == JsonValueKind.Object
                && dec.TryGetProperty("type", out var dt) && dt.ValueKind == JsonValueKind.String && dt.GetString() == "Sequence")
                throw new InvalidInputException("tokenizer.json is a SentencePiece-style BPE (byte fallback), which Squeeze does not convert yet");
        }
        return HfVocab.Load(folder, h.VocabSize);
    }

    /// <summary>llama.cpp's file type for the out type; "auto" looks at the first 2-D tensor, as the converter does.</summary>
    private static uint FileTypeFor(ConvertOutType outType, SafetensorsCheckpoint? checkpoint) => outType switch
    {
        ConvertOutType.F32 => 0,
        ConvertOutType.F16 => 1,
        ConvertOutType.Q8_0 => 7,
        ConvertOutType.BF16 => 32,
        _ => checkpoint?.Tensors.FirstOrDefault(t => t.Shape.Length >= 2)?.DType switch
        {
            SafetensorsDType.BF16 => 32,
            _ => 1,
        },
    };

    private static GgmlType WeightType(uint fileType) => fileType switch
    {
        0 => GgmlType.F32,
        1 => GgmlType.F16,
        7 => GgmlType.Q8_0,
        32 => GgmlType.BF16,
        _ => throw new ArgumentOutOfRangeException(nameof(fileType)),
    };

    // ---- hyperparameters --------------------------------------------------------------------------------------

    internal sealed record Hyperparameters(long BlockCount, long Hidden, long Heads, long KvHeads, long HeadDim, long? FeedForward,
        long? VocabSize, bool TiedEmbeddings, long Experts, long ExpertsUsed, long? ExpertFeedForward)
    {
        public static Hyperparameters From(HfConfig c, HfArchitecture arch)
        {
            long blocks = c.RequireInt("n_layers", "num_hidden_layers", "n_layer", "num_layers");
            long hidden = c.RequireInt("hidden_size", "n_embd", "dim");
            long heads = c.RequireInt("num_attention_heads", "n_head", "n_heads");
            long kv = c.FindInt("num_key_value_heads", "n_kv_heads") ?? heads;
            if (kv == 0 || heads % kv != 0) throw new InvalidInputException($"config.json: {heads} attention heads cannot share {kv} key-value heads");
            long headDim = c.FindInt("head_dim") ?? (arch == HfArchitecture.Qwen3 || arch == HfArchitecture.Qwen3Moe ? 128 : hidden / heads);
            if (headDim == 0 || headDim % 2 != 0) throw new InvalidInputException($"config.json: head_dim {headDim} must be a positive even number");
            long? ff = c.FindInt("prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner", "hidden_dim");
            if (!arch.Moe && (ff ?? 0) == 0) throw new InvalidInputException("config.json has no intermediate_size");
            long? vocab = c.FindInt("vocab_size");
            if (arch.WritesVocabSize && vocab is null) throw new InvalidInputException("config.json has no vocab_size");
            long experts = 0, used = 0;
            long? expertFf = null;
            if (arch.Moe)
            {
                experts = c.RequireInt("num_local_experts", "num_experts", "n_routed_experts");
                used = c.RequireInt("num_experts_per_tok", "num_experts_per_token", "top_k_experts");
                expertFf = c.RequireInt("moe_intermediate_size");
            }
            return new Hyperparameters(blocks, hidden, heads, kv, headDim, ff, vocab, c.Bool("tie_word_embeddings", false), experts, used, expertFf);
        }
    }

    /// <summary>TextModel.set_gguf_parameters and the architecture's additions, in the converter's order.</summary>
    private static void WriteHyperparameters(GgufWriter w, HfConfig c, HfArchitecture arch, Hyperparameters h, uint fileType)
    {
        string a = arch.GgufName;
        void U32(string key, long? value) { if (value is long v) w.Set(key, GgufValue.UInt32(checked((uint)v))); }
        void F32(string key, double? value) { if (value is double v) w.Set(key, GgufValue.Float32((float)v)); }
        U32(GgufKeys.Arch.BlockCount(a), h.BlockCount);
        U32(GgufKeys.Arch.ContextLength(a), c.FindInt("max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"));
        U32(GgufKeys.Arch.EmbeddingLength(a), c.FindInt("hidden_size", "n_embd", "dim"));
        U32(GgufKeys.Arch.FeedForwardLength(a), h.FeedForward);
        U32(GgufKeys.Arch.AttentionHeadCount(a), c.FindInt("num_attention_heads", "n_head", "n_heads"));
        U32(GgufKeys.Arch.AttentionHeadCountKv(a), c.FindInt("num_key_value_heads", "n_kv_heads"));
        if (c.Get("is_causal") is { ValueKind: JsonValueKind.False }) w.Set(GgufKeys.Arch.AttentionCausal(a), GgufValue.Bool(false));

        var rope = RopeParameters(c);
        if (rope.TryGetValue("rope_type", out var ropeType) && ropeType is string rt)
        {
            double? factor = rope.TryGetValue("factor", out var f) && f is double fd ? fd : null;
            if (rt == "linear" && factor is not null)
            {
                w.Set(GgufKeys.Arch.RopeScalingType(a), GgufValue.String("linear"));
                F32(GgufKeys.Arch.RopeScalingFactor(a), factor);
            }
            else if (rt == "yarn" && factor is not null)
            {
                w.Set(GgufKeys.Arch.RopeScalingType(a), GgufValue.String("yarn"));
                F32(GgufKeys.Arch.RopeScalingFactor(a), factor);
                U32(GgufKeys.Arch.RopeScalingOriginalContextLength(a), rope.TryGetValue("original_max_position_embeddings", out var o) && o is double od ? (long)od
                    : throw new InvalidInputException("config.json: yarn rope scaling needs original_max_position_embeddings"));
                F32(GgufKeys.Arch.RopeScalingYarnExtFactor(a), rope.GetValueOrDefault("extrapolation_factor") as double?);
                F32(GgufKeys.Arch.RopeScalingYarnAttnFactor(a), (rope.GetValueOrDefault("attention_factor") ?? rope.GetValueOrDefault("attn_factor")) as double?);
                F32(GgufKeys.Arch.RopeScalingYarnBetaFast(a), rope.GetValueOrDefault("beta_fast") as double?);
                F32(GgufKeys.Arch.RopeScalingYarnBetaSlow(a), rope.GetValueOrDefault("beta_slow") as double?);
            }
            else if (rt is "su" or "longrope") w.Set(GgufKeys.Arch.RopeScalingType(a), GgufValue.String("longrope"));
        }
        F32(GgufKeys.Arch.RopeFreqBase(a), rope.GetValueOrDefault("rope_theta") as double?);
        F32(GgufKeys.Arch.AttentionLayerNormRmsEpsilon(a), c.FindNumber("rms_norm_eps", "norm_eps"));
        F32(GgufKeys.Arch.AttentionLayerNormEpsilon(a), c.FindNumber("layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"));
        U32(GgufKeys.Arch.ExpertCount(a), c.FindInt("num_local_experts", "num_experts", "n_routed_experts"));
        U32(GgufKeys.Arch.ExpertUsedCount(a), c.FindInt("num_experts_per_tok", "num_experts_per_token", "top_k_experts"));
        if (arch.DefaultHeadDim || c.Has("head_dim"))
        {
            U32(GgufKeys.Arch.AttentionKeyLength(a), h.HeadDim);
            U32(GgufKeys.Arch.AttentionValueLength(a), h.HeadDim);
        }
        w.Set(GgufKeys.General.FileType, GgufValue.UInt32(fileType));
        if (arch.WritesVocabSize)
        {
            U32(GgufKeys.Arch.VocabSize(a), h.VocabSize);
            U32(GgufKeys.Arch.RopeDimensionCount(a), c.FindInt("head_dim") ?? h.Hidden / h.Heads);
        }
        if (arch.Moe)
        {
            U32(GgufKeys.Arch.ExpertFeedForwardLength(a), c.FindInt("moe_intermediate_size"));
            U32(GgufKeys.Arch.ExpertSharedFeedForwardLength(a), c.FindInt("shared_expert_intermediate_size"));
        }
    }

    /// <summary>TextModel's rope_parameters: rope_parameters or rope_scaling, with the global rope_theta mirrored in.</summary>
    private static Dictionary<string, object?> RopeParameters(HfConfig c)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        JsonElement? source = c.Get("rope_parameters") ?? c.Get("rope_scaling");
        if (source is { ValueKind: JsonValueKind.Object } s)
        {
            if (s.TryGetProperty("full_attention", out var full) && full.ValueKind == JsonValueKind.Object) s = full;
            foreach (var p in s.EnumerateObject())
                result[p.Name] = p.Value.ValueKind switch
                {
                    JsonValueKind.String => p.Value.GetString(),
                    JsonValueKind.Number => p.Value.GetDouble(),
                    _ => null,
                };
        }
        if (!result.ContainsKey("rope_theta") && c.FindNumber("global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base") is double theta)
            result["rope_theta"] = theta;
        if (!result.ContainsKey("rope_type") && result.TryGetValue("type", out var t)) result["rope_type"] = t;
        if (!result.ContainsKey("original_max_position_embeddings") && c.FindNumber("original_max_position_embeddings") is double omp)
            result["original_max_position_embeddings"] = omp;
        return result;
    }

    // ---- tensors ----------------------------------------------------------------------------------------------

    private static List<OutputTensor> PlanTensors(SafetensorsCheckpoint ckpt, HfConfig config, HfArchitecture arch, Hyperparameters h, uint fileType)
    {
        var weightType = WeightType(fileType);
        var outputs = new List<OutputTensor>();
        var byName = new Dictionary<string, OutputTensor>(StringComparer.Ordinal);
        var experts = new Dictionary<string, SafetensorsTensor?[]>(StringComparer.Ordinal);

        foreach (var extra in GeneratedTensors(config, arch, h)) { outputs.Add(extra); byName.Add(extra.Name, extra); }

        foreach (var t in ckpt.Tensors)
        {
            if (HfTensorNames.IsSkipped(t.Name)) continue;
            var mapped = HfTensorNames.Map(t.Name, arch, (int)h.BlockCount)
                ?? throw new InvalidInputException($"tensor '{t.Name}' {t.ShapeText} cannot be mapped to a {arch.GgufName} GGUF tensor");
            var expected = ExpectedShape(mapped.Kind, h)
                ?? throw new InvalidInputException($"tensor '{t.Name}' cannot be mapped to a {arch.GgufName} GGUF tensor");
            if (t.Shape.Length != expected.Length || t.Shape.Zip(expected).Any(d => d.Second >= 0 && d.First != d.Second))
                throw new InvalidInputException($"tensor '{t.Name}' has shape {t.ShapeText}, but config.json implies [{string.Join(", ", expected)}]");

            if (mapped.Expert >= 0)
            {
                if (mapped.Expert >= h.Experts)
                    throw new InvalidInputException($"tensor '{t.Name}' is expert {mapped.Expert}, but config.json has {h.Experts} experts");
                if (!experts.TryGetValue(mapped.GgufName, out var slots)) experts[mapped.GgufName] = slots = new SafetensorsTensor?[h.Experts];
                slots[mapped.Expert] = t;
                // Qwen2MoeModel merges a block's experts once all of them (x3 projections) have been seen, in down, gate, up order.
                string prefix = $"blk.{mapped.Block}.";
                string[] group = [prefix + "ffn_down_exps.weight", prefix + "ffn_gate_exps.weight", prefix + "ffn_up_exps.weight"];
                if (group.All(g => experts.TryGetValue(g, out var s) && s.All(x => x is not null)))
                    foreach (var g in group)
                    {
                        var sources = experts[g]!.Select(x => x!).ToArray();
                        var o = new OutputTensor(g, TypeFor(g, 3, sources[0].RowLength, weightType), sources, 0, null);
                        outputs.Add(o);
                        byName.Add(g, o);
                        experts.Remove(g);
                    }
                continue;
            }

            int permuteHeads = 0;
            if (arch.UndoPermute && mapped.Kind is "attn_q" or "attn_q.bias") permuteHeads = (int)h.Heads;
            if (arch.UndoPermute && mapped.Kind is "attn_k" or "attn_k.bias") permuteHeads = (int)h.KvHeads;
            var type = TypeFor(mapped.GgufName, t.Shape.Length, t.RowLength, weightType);
            var output = new OutputTensor(mapped.GgufName, type, [t], permuteHeads, null);
            if (!byName.TryAdd(output.Name, output))
                throw new InvalidInputException($"tensor '{t.Name}' maps to {output.Name}, which another checkpoint tensor already gave");
            outputs.Add(output);
        }
        if (experts.Count > 0)
        {
            var (name, slots) = experts.First();
            int missing = Array.FindIndex(slots, s => s is null);
            throw new InvalidInputException($"{name}: the checkpoint lacks expert {missing} (of {h.Experts}); unprocessed experts remain");
        }

        // Everything the architecture needs must be there.
        var required = new List<string> { "token_embd.weight", "output_norm.weight" };
        if (!h.TiedEmbeddings) required.Add("output.weight");
        for (int b = 0; b < h.BlockCount; b++)
        {
            var names = new List<string> { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm" };
            if (arch.QkNorm) names.AddRange(["attn_q_norm", "attn_k_norm"]);
            names.AddRange(arch.Moe ? ["ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"] : ["ffn_gate", "ffn_up", "ffn_down"]);
            required.AddRange(names.Select(n => $"blk.{b}.{n}.weight"));
            if (arch.QkvBias) required.AddRange(new[] { "attn_q", "attn_k", "attn_v" }.Select(n => $"blk.{b}.{n}.bias"));
        }
        var absent = required.Where(r => !byName.ContainsKey(r)).ToList();
        if (absent.Count > 0)
            throw new InvalidInputException($"the checkpoint lacks {absent.Count} tensor(s) a {arch.GgufName} model needs: {string.Join(", ", absent.Take(4))}{(absent.Count > 4 ? ", ..." : "")}");
        return outputs;
    }

    /// <summary>The PyTorch-order shape config.json implies for a tensor kind, or null for a kind this converter does not know.</summary>
    private static long[]? ExpectedShape(string kind, Hyperparameters h)
    {
        long q = h.Heads * h.HeadDim, kv = h.KvHeads * h.HeadDim, vocab = h.VocabSize ?? -1, ff = h.FeedForward ?? -1, eff = h.ExpertFeedForward ?? -1;
        long[]? shape = kind switch
        {
            "token_embd" or "output" => [vocab, h.Hidden],
            "output_norm" or "attn_norm" or "ffn_norm" => [h.Hidden],
            "attn_q" => [q, h.Hidden],
            "attn_q.bias" => [q],
            "attn_k" or "attn_v" => [kv, h.Hidden],
            "attn_k.bias" or "attn_v.bias" => [kv],
            "attn_output" => [h.Hidden, q],
            "attn_q_norm" or "attn_k_norm" => [h.HeadDim],
            "ffn_gate" or "ffn_up" => [ff, h.Hidden],
            "ffn_down" => [h.Hidden, ff],
            "ffn_gate_inp" => [h.Experts, h.Hidden],
            "ffn_gate_exps" or "ffn_up_exps" => [eff, h.Hidden],
            "ffn_down_exps" => [h.Hidden, eff],
            _ => null,
        };
        // Without vocab_size in config.json the embedding's rows are taken as they are (-1 matches any size).
        return shape;
    }

    /// <summary>prepare_tensors' type choice: 1-D tensors, norms, biases and the router stay F32; Q8_0 needs rows of 32.</summary>
    private static GgmlType TypeFor(string name, int dims, long rowLength, GgmlType weightType)
    {
        if (dims <= 1 || name.EndsWith("_norm.weight", StringComparison.Ordinal)) return GgmlType.F32;
        if (name.Contains("ffn_gate_inp", StringComparison.Ordinal) || !name.EndsWith(".weight", StringComparison.Ordinal)) return GgmlType.F32;
        if (weightType == GgmlType.Q8_0 && rowLength % Q8_0.QK != 0) return GgmlType.F16; // gguf-py's QuantError fallback
        return weightType;
    }

    /// <summary>LlamaModel.generate_extra_tensors: rope_freqs for "llama3" rope scaling.</summary>
    /// <remarks>Computed in float32 as torch computes it; torch's pow may differ from <see cref="MathF.Pow"/> in the last bit.</remarks>
    private static IEnumerable<OutputTensor> GeneratedTensors(HfConfig c, HfArchitecture arch, Hyperparameters h)
    {
        if (arch != HfArchitecture.Llama) yield break;
        var rope = RopeParameters(c);
        if (rope.GetValueOrDefault("rope_type") is not string type || !type.Equals("llama3", StringComparison.OrdinalIgnoreCase)) yield break;
        float theta = (float)(rope.GetValueOrDefault("rope_theta") as double? ?? 10000.0);
        long dim = c.FindInt("head_dim") ?? h.Hidden / h.Heads;
        double factor = rope.GetValueOrDefault("factor") as double? ?? 8.0;
        double low = rope.GetValueOrDefault("low_freq_factor") as double? ?? 1.0;
        double high = rope.GetValueOrDefault("high_freq_factor") as double? ?? 4.0;
        double oldContext = rope.GetValueOrDefault("original_max_position_embeddings") as double? ?? 8192;
        float lowWavelen = (float)(oldContext / low), highWavelen = (float)(oldContext / high);
        var factors = new float[dim / 2];
        for (int i = 0; i < factors.Length; i++)
        {
            float freq = 1.0f / MathF.Pow(theta, (float)(2 * i) / dim);
            float wavelen = (float)(2 * Math.PI) / freq;
            if (wavelen < highWavelen) factors[i] = 1;
            else if (wavelen > lowWavelen) factors[i] = (float)factor;
            else
            {
                float smooth = ((float)oldContext / wavelen - (float)low) / (float)(high - low);
                factors[i] = 1 / ((1 - smooth) / (float)factor + smooth);
            }
        }
        yield return new OutputTensor("rope_freqs.weight", GgmlType.F32, [], 0, factors);
    }

    /// <summary>One GGUF tensor and where its data comes from.</summary>
    internal sealed class OutputTensor(string name, GgmlType type, SafetensorsTensor[] sources, int permuteHeads, float[]? generated)
    {
        public string Name { get; } = name;
        public GgmlType Type { get; } = type;
        public SafetensorsTensor[] Sources { get; } = sources;

        /// <summary>Heads of the llama Q/K permutation, or 0.</summary>
        public int PermuteHeads { get; } = permuteHeads;

        /// <summary>Data computed by the converter instead of read from the checkpoint.</summary>
        public float[]? Generated { get; } = generated;

        /// <summary>The GGUF (ggml-order) shape: PyTorch's reversed, with stacked experts outermost.</summary>
        public long[] GgufShape { get; } = generated is not null ? [generated.Length]
            : sources.Length > 1 || name.Contains("_exps.", StringComparison.Ordinal)
                ? [.. sources[0].Shape.Reverse(), sources.Length]
                : [.. sources[0].Shape.Reverse()];

        public long RowLength => GgufShape[0];
        public long RowCount => GgufShape.Skip(1).Aggregate(1L, (a, b) => a * b);
        public long ByteSize => GgmlTypes.RowSize(Type, RowLength) * RowCount;

        /// <summary>Writes the tensor's bytes in chunks of rows; <paramref name="written"/> gets each chunk's byte count.</summary>
        public void Write(Stream stream, CancellationToken cancellation, Action<long> written)
        {
            if (Generated is not null)
            {
                var bytes = MemoryMarshal.AsBytes(Generated.AsSpan());
                stream.Write(bytes);
                written(bytes.Length);
                return;
            }
            if (GgufShape.Length == 1 && PermuteHeads > 0)
            {
                WritePermutedVector(stream);
                written(ByteSize);
                return;
            }
            int rowLength = checked((int)RowLength);
            long outRowBytes = GgmlTypes.RowSize(Type, rowLength);
            int chunkRows = (int)Math.Min(Math.Clamp((1L << 20) / Math.Max(1, rowLength * 4), 1, 4096), Sources.Max(s => s.RowCount));
            // Pooled buffers of about 1 MiB: a tensor never needs more than one chunk of rows in memory.
            var floats = ArrayPool<float>.Shared.Rent(chunkRows * rowLength);
            var output = ArrayPool<byte>.Shared.Rent(checked((int)(chunkRows * outRowBytes)));
            try { WriteChunks(stream, cancellation, written, rowLength, outRowBytes, chunkRows, floats, output); }
            finally
            {
                ArrayPool<float>.Shared.Return(floats);
                ArrayPool<byte>.Shared.Return(output);
            }
        }

        private void WriteChunks(Stream stream, CancellationToken cancellation, Action<long> written, int rowLength, long outRowBytes, int chunkRows,
            float[] floats, byte[] output)
        {
            foreach (var src in Sources)
            {
                long rows = src.RowCount;
                bool copy = SameType(src.DType, Type);
                for (long r = 0; r < rows; r += chunkRows)
                {
                    cancellation.ThrowIfCancellationRequested();
                    int n = (int)Math.Min(chunkRows, rows - r);
                    if (copy && PermuteHeads == 0)
                    {
                        var bytes = src.File.GetRows(src, r, n);
                        stream.Write(bytes);
                        written(bytes.Length);
                        continue;
                    }
                    for (int i = 0; i < n; i++)
                    {
                        long from = PermuteHeads > 0 ? PermutedRow(r + i, rows, PermuteHeads) : r + i;
                        if (copy)
                            src.File.GetRows(src, from, 1).CopyTo(output.AsSpan((int)(i * outRowBytes), (int)outRowBytes));
                        else
                            src.File.ReadRows(src, from, 1, floats.AsSpan(i * rowLength, rowLength));
                    }
                    var outSpan = output.AsSpan(0, (int)(n * outRowBytes));
                    if (!copy) Encode(floats.AsSpan(0, n * rowLength), outSpan, n, rowLength);
                    stream.Write(outSpan);
                    written(outSpan.Length);
                }
            }
        }

        private void WritePermutedVector(Stream stream)
        {
            var src = Sources[0];
            int n = checked((int)src.ElementCount);
            var values = new float[n];
            src.File.ReadRows(src, 0, 1, values);
            var permuted = new float[n];
            for (int i = 0; i < n; i++) permuted[i] = values[PermutedRow(i, n, PermuteHeads)];
            var bytes = new byte[ByteSize];
            Encode(permuted, bytes, 1, n);
            stream.Write(bytes);
        }

        private static bool SameType(SafetensorsDType d, GgmlType t) =>
            (d, t) is (SafetensorsDType.F32, GgmlType.F32) or (SafetensorsDType.F16, GgmlType.F16) or (SafetensorsDType.BF16, GgmlType.BF16);

        private void Encode(ReadOnlySpan<float> src, Span<byte> dst, int rows, int rowLength)
        {
            switch (Type)
            {
                case GgmlType.F32:
                    MemoryMarshal.AsBytes(src).CopyTo(dst);
                    break;
                case GgmlType.F16:
                    for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], Fp16.FromFloat(src[i]));
                    break;
                case GgmlType.BF16:
                    for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], Bf16.FromFloat(src[i]));
                    break;
                case GgmlType.Q8_0:
                    // gguf-py's Q8_0 (numpy: d = amax/127 in float32, q = round half away from zero of x*(1/d)) gives the
                    // same bytes as ggml's quantize_row_q8_0_ref, which this kernel reproduces.
                    long rowBytes = GgmlTypes.RowSize(GgmlType.Q8_0, rowLength);
                    for (int r = 0; r < rows; r++)
                        Q8_0.QuantizeRowRef(src.Slice(r * rowLength, rowLength), dst.Slice((int)(r * rowBytes), (int)rowBytes));
                    break;
                default:
                    throw new InvalidOperationException($"cannot write {Type}");
            }
        }
    }

    /// <summary>
    /// LlamaModel.permute: the source row of output row <paramref name="row"/>. Hugging Face keeps each head's rotary
    /// pairs as two halves (x_i, x_{i+d/2}); ggml's llama RoPE pairs adjacent rows (x_{2i}, x_{2i+1}). With
    /// h = head, d = rows per head: output row h*d + 2i + s is input row h*d + s*d/2 + i.
    /// </summary>
    internal static long PermutedRow(long row, long rows, int heads)
    {
        if (rows % (2L * heads) != 0) throw new InvalidInputException($"{rows} rows cannot be split into {heads} heads of rotary pairs");
        long d = rows / heads, half = d / 2;
        long h = row / d, j = row % d;
        return h * d + (j % 2) * half + j / 2;
    }
}
