using System.Globalization;
using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Quantization;

/// <summary>What happens to one tensor, and why.</summary>
/// <param name="Tensor">The input tensor.</param>
/// <param name="TargetType">Its type in the output.</param>
/// <param name="Reason">Why it gets that type (for <c>--dry-run</c> and the summary).</param>
/// <param name="FellBack">Whether the row-size fallback changed the type.</param>
/// <param name="RequiresImatrix">Whether llama.cpp refuses to quantize it without importance weights.</param>
public sealed record TensorPlan(GgufTensorInfo Tensor, GgmlType TargetType, string Reason, bool FellBack, bool RequiresImatrix)
{
    /// <summary>Its name in the output (differs from the input's when <c>--prune-layers</c> renumbers blocks).</summary>
    public string Name { get; init; } = Tensor.Name;

    /// <summary>Whether the data changes (false: the bytes are copied).</summary>
    public bool Converts => TargetType != Tensor.Type;

    /// <summary>Bytes in the output.</summary>
    public long OutputBytes => GgmlTypes.RowSize(TargetType, Tensor.Shape[0]) * Tensor.RowCount;

    /// <summary>The block the tensor belongs to in the output (<c>blk.N.</c>), or -1.</summary>
    public long Layer => QuantizationPlan.BlockNumber(Name);
}

/// <summary>llama-quantize's options that also apply under <c>--pure</c>.</summary>
public sealed record PureOptions
{
    /// <summary>False for <c>--leave-output-tensor</c>: <c>output.weight</c> keeps its type.</summary>
    public bool QuantizeOutput { get; init; } = true;

    /// <summary><c>--output-tensor-type</c>: the type of <c>output.weight</c>, as given (no fallback).</summary>
    public GgmlType? OutputTensorType { get; init; }

    /// <summary><c>--token-embedding-type</c>: the type of the token embeddings, as given (no fallback).</summary>
    public GgmlType? TokenEmbeddingType { get; init; }
}

/// <summary>Everything of llama-quantize's command line that decides the tensors' types and names.</summary>
public sealed record PlanOptions
{
    /// <summary><c>--pure</c>: no mixture rules; every quantizable tensor gets the default type (user rules still apply).</summary>
    public bool Pure { get; init; }

    /// <summary>False for <c>--leave-output-tensor</c>: <c>output.weight</c> keeps its type.</summary>
    public bool QuantizeOutput { get; init; } = true;

    /// <summary><c>--output-tensor-type</c>: the type of <c>output.weight</c>, as given (no fallback).</summary>
    public GgmlType? OutputTensorType { get; init; }

    /// <summary><c>--token-embedding-type</c>: the type of the token embeddings, as given (no fallback).</summary>
    public GgmlType? TokenEmbeddingType { get; init; }

    /// <summary><c>--tensor-type</c> and <c>--tensor-type-file</c> rules, in order (first match wins).</summary>
    public IReadOnlyList<TensorTypeRule> TensorTypes { get; init; } = [];

    /// <summary><c>--prune-layers</c>: blocks to drop.</summary>
    public IReadOnlyList<int> PruneLayers { get; init; } = [];

    /// <summary><c>--override-kv</c>: metadata written to the output (integers also replace the hyperparameters the rules read).</summary>
    public IReadOnlyList<MetadataOverride> MetadataOverrides { get; init; } = [];

    /// <summary>Whether an imatrix (with at least one entry) will be given; some mixes choose differently with one.</summary>
    public bool HasImatrix { get; init; }

    /// <summary>The options of <see cref="PureOptions"/> with <c>--pure</c>.</summary>
    public static PlanOptions FromPure(PureOptions? pure) => new()
    {
        Pure = true,
        QuantizeOutput = pure?.QuantizeOutput ?? true,
        OutputTensorType = pure?.OutputTensorType,
        TokenEmbeddingType = pure?.TokenEmbeddingType,
    };
}

/// <summary>
/// The type of every tensor of a model, in the order llama.cpp writes them, with the reason for each: built by
/// <see cref="Build"/> (llama-quantize's rules: presets, user rules, fallback) or by any other planner.
/// <see cref="ModelQuantizer"/> carries a plan out.
/// </summary>
public sealed class QuantizationPlan
{
    public QuantizationPlan(LlamaFileType fileType, IReadOnlyList<TensorPlan> tensors)
    {
        FileType = fileType;
        Tensors = tensors;
    }

    /// <summary>The file type written to <c>general.file_type</c>.</summary>
    public LlamaFileType FileType { get; }

    /// <summary>One entry per tensor, in output order.</summary>
    public IReadOnlyList<TensorPlan> Tensors { get; }

    /// <summary>Metadata set in the output after the file type (<c>--override-kv</c>), in order.</summary>
    public IReadOnlyList<MetadataOverride> MetadataOverrides { get; init; } = [];

    /// <summary>When layers are pruned: the architecture's block-count key and its new value, set last.</summary>
    public KeyValuePair<string, uint>? BlockCount { get; init; }

    /// <summary>Tensors of the input left out (pruned layers).</summary>
    public IReadOnlyList<string> Dropped { get; init; } = [];

    /// <summary>How many tensors needed the row-size fallback.</summary>
    public int FallbackCount => Tensors.Count(t => t.FellBack);

    /// <summary>Elements over all tensors.</summary>
    public long Elements => Tensors.Sum(t => t.Tensor.ElementCount);

    /// <summary>Bytes of tensor data in the input (planned tensors only).</summary>
    public long InputBytes => Tensors.Sum(t => t.Tensor.ByteSize);

    /// <summary>Bytes of tensor data in the output.</summary>
    public long OutputBytes => Tensors.Sum(t => t.OutputBytes);

    /// <summary>Bits per weight of the output's tensor data.</summary>
    public double BitsPerWeight => Elements == 0 ? 0 : OutputBytes * 8.0 / Elements;

    /// <summary>Per output block (-1: tensors outside blocks), in order: tensors, elements, input and output bytes.</summary>
    public IReadOnlyList<LayerTotals> ByLayer() =>
        Tensors.GroupBy(t => t.Layer).OrderBy(g => g.Key)
            .Select(g => new LayerTotals(g.Key, g.Count(), g.Sum(t => t.Tensor.ElementCount), g.Sum(t => t.Tensor.ByteSize), g.Sum(t => t.OutputBytes)))
            .ToList();

    /// <summary>
    /// llama.cpp's <c>--pure</c>: every quantizable tensor gets the target's tensor type (output and token
    /// embeddings included: <c>--pure</c> skips the mixture rules that treat them specially), then the row-size
    /// fallback; other tensors keep their type. When the target type is not a quantized type (F32, F16, BF16) there
    /// is no fallback, as in llama.cpp. <paramref name="options"/> carries llama-quantize's
    /// <c>--leave-output-tensor</c>, <c>--output-tensor-type</c> and <c>--token-embedding-type</c>, which apply first.
    /// </summary>
    public static QuantizationPlan Pure(GgufFile model, QuantizeTarget target, PureOptions? options = null) =>
        Build(model, target, PlanOptions.FromPure(options));

    /// <summary>
    /// The types llama-quantize gives every tensor (<c>llama_tensor_get_type</c> at 815a2a591), in its order:
    /// tensors it never quantizes keep their type; then <c>--token-embedding-type</c> / <c>--output-tensor-type</c>
    /// (as given); a non-quantized file type (F32/F16/BF16) gives its type to all; otherwise the first matching user
    /// rule, else (unless <c>--pure</c>) the preset's rules (<see cref="Presets"/>), then the row-size fallback.
    /// With COPY nothing changes and <c>general.file_type</c> is the input's.
    /// </summary>
    /// <exception cref="QuantizationException">A tensor's rows fit no type, or the model lacks what the rules read.</exception>
    public static QuantizationPlan Build(GgufFile model, QuantizeTarget target, PlanOptions options)
    {
        var pruning = new LayerPruning(options.PruneLayers);
        // Names after pruning, in llama.cpp's order (sorted by the original names).
        var kept = new List<(GgufTensorInfo Tensor, string Name)>(model.Tensors.Count);
        var dropped = new List<string>();
        foreach (var t in LlamaOrder(model.Tensors))
        {
            if (pruning.Remap(t.Name) is { } name) kept.Add((t, name));
            else dropped.Add(t.Name);
        }

        var fileType = target.IsCopy ? CopyFileType(model, LlamaOrder(model.Tensors)) : target.FileType;
        var defaultType = target.TensorType;
        bool quantized = GgmlTypes.Get(defaultType).IsQuantized;
        bool tied = !kept.Any(k => TensorCategories.Of(k.Name) == TensorCategory.Output);
        int attnVCount = kept.Count(k => TensorCategories.Of(k.Name).IsAttentionV());
        ModelFacts? facts = null;
        var counters = new Dictionary<PresetCounter, int>();

        var plans = new List<TensorPlan>(kept.Count);
        foreach (var (t, name) in kept)
        {
            var q = target.IsCopy ? new Quantizability(false, "COPY keeps every tensor") : QuantizableTensors.Check(name, t.Shape, options.QuantizeOutput);
            if (!q.Allowed)
            {
                plans.Add(new TensorPlan(t, t.Type, $"kept ({q.Reason})", false, false) { Name = name });
                continue;
            }
            var category = TensorCategories.Of(name);
            // llama.cpp returns these types as given: no fallback, so rows that do not fit are an error here.
            var given = category == TensorCategory.TokenEmbedding ? options.TokenEmbeddingType
                : category == TensorCategory.Output ? options.OutputTensorType : null;
            if (given is { } g)
            {
                int block = GgmlTypes.Get(g).BlockSize;
                if (t.Shape[0] % block != 0)
                    throw new QuantizationException($"tensor '{name}': rows of {t.Shape[0]} do not fit {g.Name()} (block {block}), the type asked for it", name);
                string option = category == TensorCategory.Output ? "--output-tensor-type" : "--token-embedding-type";
                plans.Add(new TensorPlan(t, g, $"{g.Name()} ({option})", false, ImatrixRequirement.Requires(name, g, fileType)) { Name = name });
                continue;
            }
            if (!quantized)
            {
                plans.Add(new TensorPlan(t, defaultType, $"{target.Name}: every quantizable tensor", false, ImatrixRequirement.Requires(name, defaultType, fileType)) { Name = name });
                continue;
            }
            var chosen = defaultType;
            string reason;
            var rule = options.TensorTypes.FirstOrDefault(r => r.Matches(name));
            if (rule is not null)
            {
                chosen = rule.Type;
                reason = $"--tensor-type {rule}";
            }
            else if (options.Pure)
            {
                reason = $"pure {target.Name}";
            }
            else
            {
                facts ??= ModelFacts.Read(model, options.MetadataOverrides);
                var counter = CounterOf(category);
                var context = new TensorContext(name, t.Shape, fileType, defaultType, facts, options.HasImatrix, tied, options.OutputTensorType,
                    counters.GetValueOrDefault(counter), counter == PresetCounter.AttentionV ? attnVCount : facts.LayerCount);
                var choice = Presets.Choose(context);
                chosen = choice.Type;
                reason = choice.Reason;
                if (choice.Counter != PresetCounter.None) counters[choice.Counter] = counters.GetValueOrDefault(choice.Counter) + 1;
            }
            bool fellBack = false;
            var (fitted, why) = TypeFallback.Apply(name, t.Shape[0], chosen);
            if (why is not null) { chosen = fitted; reason = $"{reason}; fallback: {why}"; fellBack = true; }
            plans.Add(new TensorPlan(t, chosen, reason, fellBack, ImatrixRequirement.Requires(name, chosen, fileType)) { Name = name });
        }

        KeyValuePair<string, uint>? blockCount = null;
        if (pruning.Active)
        {
            string arch = model.Architecture ?? throw new QuantizationException($"the model has no {GgufKeys.General.Architecture}");
            blockCount = new(GgufKeys.Arch.BlockCount(arch), (uint)pruning.BlockCount);
        }
        foreach (var o in options.MetadataOverrides) o.Validate();
        return new QuantizationPlan(fileType, plans) { MetadataOverrides = options.MetadataOverrides, BlockCount = blockCount, Dropped = dropped };
    }

    /// <summary>The counter a category's section advances (the section decides whether it does).</summary>
    private static PresetCounter CounterOf(TensorCategory c) => c switch
    {
        _ when c.IsAttentionV() => PresetCounter.AttentionV,
        TensorCategory.FfnDown => PresetCounter.FfnDown,
        TensorCategory.FfnGate => PresetCounter.FfnGate,
        TensorCategory.FfnUp => PresetCounter.FfnUp,
        _ => PresetCounter.None,
    };

    /// <summary>
    /// The file type llama.cpp records for COPY: the input's <c>general.file_type</c>, else a guess from the most common
    /// tensor type (the first to reach the highest count, in llama.cpp's order) with llama.cpp's "guessed" flag (1024) set.
    /// </summary>
    public static LlamaFileType CopyFileType(GgufFile model, IEnumerable<GgufTensorInfo> tensors)
    {
        if (model.Find(GgufKeys.General.FileType) is { } v)
        {
            try { return (LlamaFileType)unchecked((uint)v.AsInt64()); }
            catch (InvalidOperationException) { throw new QuantizationException($"{GgufKeys.General.FileType} is {v.Type.ShortName()}, not an integer"); }
        }
        var counts = new Dictionary<GgmlType, int>();
        int max = 0;
        var most = GgmlType.F32;
        foreach (var t in tensors)
        {
            int n = counts[t.Type] = counts.GetValueOrDefault(t.Type) + 1;
            if (n > max) { max = n; most = t.Type; }
        }
        var guess = GuessedFileTypes.TryGetValue(most, out var f) ? f : LlamaFileType.F32;
        return (LlamaFileType)((uint)guess | GuessedFlag);
    }

    /// <summary>The loader's guess of a file type from its most common tensor type (llama-model-loader.cpp at 815a2a591); others guess F32.</summary>
    private static readonly Dictionary<GgmlType, LlamaFileType> GuessedFileTypes = new()
    {
        [GgmlType.F32] = LlamaFileType.F32, [GgmlType.F16] = LlamaFileType.F16, [GgmlType.BF16] = LlamaFileType.BF16,
        [GgmlType.Q4_0] = LlamaFileType.Q4_0, [GgmlType.Q4_1] = LlamaFileType.Q4_1, [GgmlType.Q5_0] = LlamaFileType.Q5_0,
        [GgmlType.Q5_1] = LlamaFileType.Q5_1, [GgmlType.Q8_0] = LlamaFileType.Q8_0, [GgmlType.Q2_K] = LlamaFileType.Q2_K,
        [GgmlType.Q3_K] = LlamaFileType.Q3_K_M, [GgmlType.Q4_K] = LlamaFileType.Q4_K_M, [GgmlType.Q5_K] = LlamaFileType.Q5_K_M,
        [GgmlType.Q6_K] = LlamaFileType.Q6_K, [GgmlType.TQ1_0] = LlamaFileType.TQ1_0, [GgmlType.TQ2_0] = LlamaFileType.TQ2_0,
        [GgmlType.IQ2_XXS] = LlamaFileType.IQ2_XXS, [GgmlType.IQ2_XS] = LlamaFileType.IQ2_XS, [GgmlType.IQ2_S] = LlamaFileType.IQ2_S,
        [GgmlType.IQ3_XXS] = LlamaFileType.IQ3_XXS, [GgmlType.IQ1_S] = LlamaFileType.IQ1_S, [GgmlType.IQ1_M] = LlamaFileType.IQ1_M,
        [GgmlType.IQ4_NL] = LlamaFileType.IQ4_NL, [GgmlType.IQ4_XS] = LlamaFileType.IQ4_XS, [GgmlType.IQ3_S] = LlamaFileType.IQ3_S,
        [GgmlType.NVFP4] = LlamaFileType.NVFP4, [GgmlType.Q1_0] = LlamaFileType.Q1_0, [GgmlType.Q2_0] = LlamaFileType.Q2_0,
    };

    /// <summary>llama.cpp's <c>LLAMA_FTYPE_GUESSED</c>.</summary>
    public const uint GuessedFlag = 1024;

    /// <summary>
    /// The order llama.cpp's model loader keeps weights in (<c>weight_name_comparer</c>): by block number (names not
    /// starting with <c>blk.N.</c> first), then by name, byte-wise.
    /// </summary>
    public static IEnumerable<GgufTensorInfo> LlamaOrder(IEnumerable<GgufTensorInfo> tensors) =>
        tensors.OrderBy(t => BlockNumber(t.Name)).ThenBy(t => t.Name, StringComparer.Ordinal);

    /// <summary>The N of a name starting <c>blk.N</c> (as C's <c>sscanf("blk.%d.")</c> reads it), else -1.</summary>
    public static long BlockNumber(string name)
    {
        const string prefix = "blk.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) return -1;
        int i = prefix.Length, start = i;
        if (i < name.Length && (name[i] == '-' || name[i] == '+')) i++;
        while (i < name.Length && char.IsAsciiDigit(name[i])) i++;
        if (i == start || !char.IsAsciiDigit(name[i - 1])) return -1;
        return int.TryParse(name.AsSpan(start, i - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) ? n : -1;
    }
}

/// <summary>Per block: tensors, elements, input and output bytes.</summary>
public sealed record LayerTotals(long Layer, int Tensors, long Elements, long InputBytes, long OutputBytes)
{
    public double BitsPerWeight => Elements == 0 ? 0 : OutputBytes * 8.0 / Elements;
}

/// <summary>
/// Which tensors llama.cpp refuses to quantize without an imatrix (<c>tensor_requires_imatrix</c> in
/// src/llama-quant.cpp at 815a2a591): the 1- to 3-bit i-quants, and Q2_K in a Q2_K_S file. The output and token
/// embeddings are exempt (llama.cpp quantizes them without importance weights).
/// </summary>
public static class ImatrixRequirement
{
    /// <summary>Types that always need importance weights, with why.</summary>
    public static IReadOnlyDictionary<GgmlType, string> Types { get; } = new Dictionary<GgmlType, string>
    {
        [GgmlType.IQ3_XXS] = "1- to 3-bit i-quants are garbage without importance weights",
        [GgmlType.IQ2_XXS] = "1- to 3-bit i-quants are garbage without importance weights",
        [GgmlType.IQ2_XS] = "1- to 3-bit i-quants are garbage without importance weights",
        [GgmlType.IQ2_S] = "1- to 3-bit i-quants are garbage without importance weights",
        [GgmlType.IQ1_M] = "1- to 3-bit i-quants are garbage without importance weights",
        [GgmlType.IQ1_S] = "1- to 3-bit i-quants are garbage without importance weights",
    };

    /// <summary>The token embeddings' names (llama.cpp's <c>tensor_name_match_token_embd</c>).</summary>
    public static IReadOnlyList<string> TokenEmbeddingNames { get; } = ["token_embd.weight", "per_layer_token_embd.weight"];

    /// <summary>Names exempt from the requirement: the token embeddings and the output.</summary>
    public static IReadOnlyList<string> ExemptNames { get; } = [.. TokenEmbeddingNames, QuantizableTensors.OutputWeight];

    /// <summary>Whether llama.cpp requires importance weights to quantize <paramref name="name"/> to <paramref name="type"/> in a <paramref name="fileType"/> file.</summary>
    public static bool Requires(string name, GgmlType type, LlamaFileType fileType)
    {
        if (ExemptNames.Contains(name)) return false;
        if (Types.ContainsKey(type)) return true;
        return type == GgmlType.Q2_K && fileType == LlamaFileType.Q2_K_S;
    }
}
