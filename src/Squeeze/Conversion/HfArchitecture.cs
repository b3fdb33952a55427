using System.Collections.Frozen;
using System.Text.RegularExpressions;

namespace Squeeze.Conversion;

/// <summary>
/// How convert_hf_to_gguf.py treats one Hugging Face architecture (its model class): the GGUF architecture name and
/// the few switches in which Llama, Qwen2, Qwen3 and Qwen3-MoE differ.
/// </summary>
/// <param name="GgufName">The <c>general.architecture</c> written.</param>
/// <param name="UndoPermute">Llama's Q/K rows are permuted from Hugging Face's rotary layout (halves) to ggml's (pairs).</param>
/// <param name="WritesVocabSize">The class writes <c>{arch}.vocab_size</c> and <c>{arch}.rope.dimension_count</c> (LlamaModel).</param>
/// <param name="DefaultHeadDim">transformers' config class has a <c>head_dim</c> attribute with a default, so
/// <c>AutoConfig(...).to_dict()</c> always has one and <c>key_length</c>/<c>value_length</c> are always written
/// (LlamaConfig: hidden_size / num_attention_heads; Qwen3Config: 128).</param>
/// <param name="QkNorm">Per-head Q/K RMSNorm weights are expected (Qwen3).</param>
/// <param name="QkvBias">Q, K and V biases are expected (Qwen2).</param>
/// <param name="Moe">Routed experts (Qwen3-MoE): per-expert weights stacked into 3-D tensors.</param>
/// <param name="TriesSentencePiece">The class first looks for a SentencePiece <c>tokenizer.model</c> (Llama, Qwen2).</param>
public sealed record HfArchitecture(string GgufName, bool UndoPermute, bool WritesVocabSize, bool DefaultHeadDim, bool QkNorm, bool QkvBias,
    bool Moe, bool TriesSentencePiece)
{
    public static readonly HfArchitecture Llama = new("llama", UndoPermute: true, WritesVocabSize: true, DefaultHeadDim: true, QkNorm: false,
        QkvBias: false, Moe: false, TriesSentencePiece: true);
    public static readonly HfArchitecture Qwen2 = new("qwen2", false, false, false, false, QkvBias: true, false, TriesSentencePiece: true);
    public static readonly HfArchitecture Qwen3 = new("qwen3", false, false, DefaultHeadDim: true, QkNorm: true, false, false, TriesSentencePiece: true);
    public static readonly HfArchitecture Qwen3Moe = new("qwen3moe", false, false, DefaultHeadDim: true, QkNorm: true, false, Moe: true, TriesSentencePiece: false);

    // convert_hf_to_gguf.py's registrations of these classes (conversion/llama.py, conversion/qwen.py), text models only.
    private static readonly FrozenDictionary<string, HfArchitecture> Known = new Dictionary<string, HfArchitecture>
    {
        ["LlamaForCausalLM"] = Llama,
        ["LLaMAForCausalLM"] = Llama,
        ["MistralForCausalLM"] = Llama,
        ["Qwen2ForCausalLM"] = Qwen2,
        ["Qwen3ForCausalLM"] = Qwen3,
        ["Qwen3MoeForCausalLM"] = Qwen3Moe,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The Hugging Face architectures Squeeze converts.</summary>
    public static IEnumerable<string> SupportedNames => Known.Keys.Order(StringComparer.Ordinal);

    /// <summary>The treatment of <paramref name="hfArchitecture"/>, or an error naming the supported ones.</summary>
    public static HfArchitecture For(string hfArchitecture) =>
        Known.GetValueOrDefault(hfArchitecture) ?? throw new InvalidInputException(
            $"architecture {hfArchitecture} is not supported (Squeeze converts {string.Join(", ", SupportedNames)})");
}

/// <summary>What a checkpoint tensor becomes in GGUF.</summary>
/// <param name="GgufName">The GGUF tensor name (<c>blk.3.attn_q.weight</c>).</param>
/// <param name="Kind">Its kind, the key into the expected-shape table.</param>
/// <param name="Block">Its block, or -1.</param>
/// <param name="Expert">Its expert, or -1 (per-expert weights are stacked into one tensor per block).</param>
internal readonly record struct MappedName(string GgufName, string Kind, int Block, int Expert);

/// <summary>
/// Hugging Face tensor names to GGUF names for the Llama/Qwen family (gguf-py's <c>tensor_mapping.py</c> entries these
/// checkpoints use; GGUF names as in gguf-py's <c>TENSOR_NAMES</c>).
/// </summary>
internal static partial class HfTensorNames
{
    // HF suffix after "model.layers.{bid}." -> GGUF name after "blk.{bid}."
    private static readonly FrozenDictionary<string, string> BlockNames = new Dictionary<string, string>
    {
        ["input_layernorm"] = "attn_norm",
        ["self_attn.q_proj"] = "attn_q",
        ["self_attn.k_proj"] = "attn_k",
        ["self_attn.v_proj"] = "attn_v",
        ["self_attn.o_proj"] = "attn_output",
        ["self_attn.q_norm"] = "attn_q_norm",
        ["self_attn.k_norm"] = "attn_k_norm",
        ["post_attention_layernorm"] = "ffn_norm",
        ["mlp.gate_proj"] = "ffn_gate",
        ["mlp.up_proj"] = "ffn_up",
        ["mlp.down_proj"] = "ffn_down",
        ["mlp.gate"] = "ffn_gate_inp",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static readonly FrozenDictionary<string, string> ExpertNames = new Dictionary<string, string>
    {
        ["gate_proj"] = "ffn_gate_exps",
        ["up_proj"] = "ffn_up_exps",
        ["down_proj"] = "ffn_down_exps",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static readonly FrozenDictionary<string, string> GlobalNames = new Dictionary<string, string>
    {
        ["model.embed_tokens"] = "token_embd",
        ["model.norm"] = "output_norm",
        ["lm_head"] = "output",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Checkpoint entries convert_hf_to_gguf.py drops without mapping them.</summary>
    public static bool IsSkipped(string name) =>
        name.EndsWith(".attention.masked_bias", StringComparison.Ordinal) || name.EndsWith(".attention.bias", StringComparison.Ordinal)
        || name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal);

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")]
    private static partial Regex BlockTensor();

    [GeneratedRegex(@"^mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)$")]
    private static partial Regex ExpertTensor();

    /// <summary>The GGUF name of <paramref name="hfName"/>, or null when it maps to nothing in this architecture.</summary>
    public static MappedName? Map(string hfName, HfArchitecture arch, int blockCount)
    {
        // TextModel.filter_tensors: "language_model." prefixes of multimodal wrappers are dropped.
        string name = hfName.Replace("language_model.", "", StringComparison.Ordinal);
        var m = BlockTensor().Match(name);
        if (m.Success)
        {
            if (!int.TryParse(m.Groups[1].ValueSpan, out int bid) || bid >= blockCount || m.Groups[1].Value != bid.ToString())
                return null;
            string inner = m.Groups[2].Value, suffix = m.Groups[3].Value;
            var e = ExpertTensor().Match(inner);
            if (e.Success)
            {
                if (!arch.Moe || suffix != "weight" || !int.TryParse(e.Groups[1].ValueSpan, out int expert)) return null;
                string stacked = ExpertNames[e.Groups[2].Value];
                return new MappedName($"blk.{bid}.{stacked}.weight", stacked, bid, expert);
            }
            if (!BlockNames.TryGetValue(inner, out var gguf)) return null;
            if (gguf is "attn_q_norm" or "attn_k_norm" && !arch.QkNorm) return null;
            if (gguf is "ffn_gate_inp" && !arch.Moe) return null;
            if (gguf is "ffn_gate" or "ffn_up" or "ffn_down" && arch.Moe) return null;
            return new MappedName($"blk.{bid}.{gguf}.{suffix}", suffix == "bias" ? gguf + ".bias" : gguf, bid, -1);
        }
        int dot = name.LastIndexOf('.');
        if (dot < 0) return null;
        string stem = name[..dot], sfx = name[(dot + 1)..];
        if (sfx != "weight" || !GlobalNames.TryGetValue(stem, out var global)) return null;
        return new MappedName($"{global}.weight", global, -1, -1);
    }
}
