using System.Globalization;
using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Quantization;

/// <summary>
/// The broad kinds of tensor the type-selection rules tell apart (llama.cpp's <c>tensor_category</c>): not the model's
/// roles, but what llama.cpp recognises by name, whatever the architecture.
/// </summary>
public enum TensorCategory
{
    Other,
    TokenEmbedding,
    AttentionQ,
    AttentionV,
    AttentionK,
    AttentionQkv,
    AttentionKvB,
    AttentionOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
}

/// <summary>
/// How a tensor's name gives its category: llama.cpp's <c>tensor_get_category</c> (src/llama-quant.cpp at 815a2a591),
/// as data. The first rule that matches wins, so <c>attn_qkv</c> is tested before <c>attn_v</c>.
/// </summary>
public static class TensorCategories
{
    /// <summary>The rules, in llama.cpp's order.</summary>
    public static IReadOnlyList<(NameMatch Match, string Text, TensorCategory Category)> Rules { get; } =
    [
        (NameMatch.Equals, "output.weight", TensorCategory.Output),
        (NameMatch.Equals, "token_embd.weight", TensorCategory.TokenEmbedding),
        (NameMatch.Equals, "per_layer_token_embd.weight", TensorCategory.TokenEmbedding),
        (NameMatch.Contains, "attn_qkv.weight", TensorCategory.AttentionQkv),
        (NameMatch.Contains, "attn_kv_b.weight", TensorCategory.AttentionKvB),
        (NameMatch.Contains, "attn_v.weight", TensorCategory.AttentionV),
        (NameMatch.Contains, "attn_k.weight", TensorCategory.AttentionK),
        (NameMatch.Contains, "attn_q.weight", TensorCategory.AttentionQ),
        (NameMatch.Contains, "attn_output.weight", TensorCategory.AttentionOutput),
        (NameMatch.Contains, "ffn_up", TensorCategory.FfnUp),
        (NameMatch.Contains, "ffn_gate", TensorCategory.FfnGate),
        (NameMatch.Contains, "ffn_down", TensorCategory.FfnDown),
    ];

    /// <summary>The category of the tensor named <paramref name="name"/>.</summary>
    public static TensorCategory Of(string name)
    {
        foreach (var (match, text, category) in Rules)
            if (match == NameMatch.Equals ? name == text : name.Contains(text, StringComparison.Ordinal)) return category;
        return TensorCategory.Other;
    }

    /// <summary>
    /// Whether the category counts as a value projection (<c>category_is_attn_v</c>): attn_v, the fused attn_qkv and
    /// MLA's attn_kv_b. They share the attn_v rules and the attn_v counter.
    /// </summary>
    public static bool IsAttentionV(this TensorCategory c) => c is TensorCategory.AttentionV or TensorCategory.AttentionQkv or TensorCategory.AttentionKvB;
}

/// <summary>
/// What the type-selection rules need to know about the model, read from its metadata as llama.cpp's loader reads it
/// (integer <c>--override-kv</c> values apply, as they do in llama.cpp's loader).
/// </summary>
/// <param name="Architecture">general.architecture.</param>
/// <param name="LayerCount"><c>{arch}.block_count</c> (llama.cpp's n_layer: the count before pruning).</param>
/// <param name="HeadCount">Attention heads of layer 0.</param>
/// <param name="KvHeadCount">Key/value heads of layer 0 (the head count when absent).</param>
/// <param name="ExpertCount"><c>{arch}.expert_count</c>, 0 when absent.</param>
/// <param name="Is70B">Whether llama.cpp sizes the model as 70B (it then gives attn_v more bits).</param>
public sealed record ModelFacts(string Architecture, int LayerCount, int HeadCount, int KvHeadCount, int ExpertCount, bool Is70B)
{
    /// <summary>Query heads per key/value head of layer 0 (llama.cpp's <c>n_gqa()</c>; 0 when there are no KV heads).</summary>
    public int Gqa => KvHeadCount == 0 ? 0 : HeadCount / KvHeadCount;

    /// <summary>Whether the architecture is Falcon, which several rules treat apart.</summary>
    public bool IsFalcon => Architecture == "falcon";

    /// <summary>
    /// Architectures and layer counts llama.cpp calls 70B (<c>load_arch_hparams</c> in src/models/*.cpp at 815a2a591);
    /// llama also needs fewer KV heads than heads and not 8 experts.
    /// </summary>
    public static IReadOnlyList<(string Architecture, int Layers)> SeventyB { get; } =
        [("llama", 80), ("deci", 80), ("olmo", 80), ("qwen2", 80), ("jais2", 68)];

    /// <summary>Reads the facts from <paramref name="model"/>'s metadata.</summary>
    /// <param name="model">The model.</param>
    /// <param name="overrides">Metadata overrides (<c>--override-kv</c>); integer ones replace the values read.</param>
    public static ModelFacts Read(GgufFile model, IReadOnlyList<MetadataOverride>? overrides = null)
    {
        string arch = model.Architecture ?? throw new QuantizationException($"the model has no {GgufKeys.General.Architecture}");
        long Int(string key, long? absent)
        {
            if (overrides?.LastOrDefault(o => o.Key == key && o.Kind == MetadataOverrideKind.Int) is { } o) return o.Int;
            var v = model.Find(key);
            if (v is null) return absent ?? throw new QuantizationException($"the model has no {key}");
            try
            {
                // Per-layer arrays: llama.cpp reads layer 0 here.
                if (v.Type == GgufValueType.Array) return v.AsArray().Count == 0 ? absent ?? 0 : v.AsArray()[0].AsInt64();
                return v.AsInt64();
            }
            catch (InvalidOperationException)
            {
                throw new QuantizationException($"{key} is {v.Type.ShortName()}, not an integer");
            }
        }
        int layers = (int)Math.Clamp(Int(GgufKeys.Arch.BlockCount(arch), null), 0, int.MaxValue);
        int heads = (int)Math.Clamp(Int(GgufKeys.Arch.AttentionHeadCount(arch), 0), 0, int.MaxValue);
        int kvHeads = (int)Math.Clamp(Int(GgufKeys.Arch.AttentionHeadCountKv(arch), heads), 0, int.MaxValue);
        int experts = (int)Math.Clamp(Int(GgufKeys.Arch.ExpertCount(arch), 0), 0, int.MaxValue);
        bool is70B = SeventyB.Contains((arch, layers)) && (arch != "llama" || (experts != 8 && heads != kvHeads));
        return new ModelFacts(arch, layers, heads, kvHeads, experts, is70B);
    }
}

/// <summary>
/// Everything a preset rule may look at for one tensor: its name, category, shape, the model, the file type, whether
/// an imatrix is given, and where the tensor falls in llama.cpp's running counts.
/// </summary>
public sealed class TensorContext
{
    private readonly int? _nameLayer;

    public TensorContext(string name, IReadOnlyList<long> shape, LlamaFileType fileType, GgmlType defaultType, ModelFacts model,
        bool hasImatrix, bool tiedEmbeddings, GgmlType? outputTensorType, int position, int positionCount)
    {
        Name = name;
        Category = TensorCategories.Of(name);
        Shape = shape;
        FileType = fileType;
        DefaultType = defaultType;
        Model = model;
        HasImatrix = hasImatrix;
        TiedEmbeddings = tiedEmbeddings;
        OutputTensorType = outputTensorType;
        Position = position;
        PositionCount = positionCount;
        long block = QuantizationPlan.BlockNumber(name);
        _nameLayer = block >= 0 ? (int)block : null;
    }

    public string Name { get; }
    public TensorCategory Category { get; }
    public IReadOnlyList<long> Shape { get; }

    /// <summary>The file type being made.</summary>
    public LlamaFileType FileType { get; }

    /// <summary>The file type's default tensor type (the type before any rule).</summary>
    public GgmlType DefaultType { get; }

    public ModelFacts Model { get; }

    /// <summary>Whether an imatrix is given (some mixes pick other types with one).</summary>
    public bool HasImatrix { get; }

    /// <summary>Whether the model has no <c>output.weight</c> (the token embeddings serve as the output).</summary>
    public bool TiedEmbeddings { get; }

    /// <summary><c>--output-tensor-type</c>, which tied token embeddings take too.</summary>
    public GgmlType? OutputTensorType { get; }

    /// <summary>
    /// How many tensors of this counter's kind the rules have seen before this one (llama.cpp's <c>i_attention_wv</c>,
    /// <c>i_ffn_down</c>, <c>i_ffn_gate</c>, <c>i_ffn_up</c>); tensors given a type by a user rule or <c>--pure</c> are not counted.
    /// </summary>
    public int Position { get; }

    /// <summary>The counter's total: the number of attn_v-like tensors, or the layer count for the FFN counters.</summary>
    public int PositionCount { get; }

    /// <summary>
    /// The layer for the FFN rules (llama.cpp's <c>layer_info</c>): <see cref="Position"/>, except in models with experts,
    /// where it is read from the name (<c>blk.N.</c>) and must lie in [0, layer count).
    /// </summary>
    public int Layer
    {
        get
        {
            if (Model.ExpertCount <= 1) return Position;
            if (_nameLayer is not int l) throw new QuantizationException($"tensor '{Name}': cannot tell its layer from its name (blk.N.)", Name);
            if (l >= Model.LayerCount) throw new QuantizationException($"tensor '{Name}': layer {l} is outside [0, {Model.LayerCount})", Name);
            return l;
        }
    }

    /// <summary>The layer count for the FFN rules.</summary>
    public int LayerCount => Model.LayerCount;

    /// <summary>Query heads per KV head.</summary>
    public int Gqa => Model.Gqa;

    /// <summary>Elements per row.</summary>
    public long RowLength => Shape[0];

    /// <summary>Matrices stacked in the third dimension (experts).</summary>
    public long Matrices => Shape.Count > 2 ? Shape[2] : 1;

    /// <summary>
    /// llama.cpp's <c>use_more_bits(i, n)</c>: the first and last eighth of the layers, and every third layer between.
    /// Integer division, as in C (<c>(i - n/8) % 3</c> keeps the sign of the dividend).
    /// </summary>
    public static bool UseMoreBits(int i, int n) => i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name} ({Category}, {Position}/{PositionCount})");
}
