using System.Collections.Frozen;

namespace Squeeze.Models;

/// <summary>What a tensor does in a transformer (llama.cpp's <c>llm_tensor</c>).</summary>
public enum TensorRole
{
    TokenEmbd,
    OutputNorm,
    Output,
    AttnNorm,
    AttnQ,
    AttnK,
    AttnV,
    AttnOutput,
    AttnQNorm,
    AttnKNorm,
    FfnNorm,
    FfnGate,
    FfnUp,
    FfnDown,
}

/// <summary>llama.cpp's tensor names (<c>LLM_TENSOR_NAMES</c>): the one place they are spelled.</summary>
public static class TensorRoles
{
    private static readonly FrozenDictionary<TensorRole, string> Names = new Dictionary<TensorRole, string>
    {
        [TensorRole.TokenEmbd] = "token_embd",
        [TensorRole.OutputNorm] = "output_norm",
        [TensorRole.Output] = "output",
        [TensorRole.AttnNorm] = "attn_norm",
        [TensorRole.AttnQ] = "attn_q",
        [TensorRole.AttnK] = "attn_k",
        [TensorRole.AttnV] = "attn_v",
        [TensorRole.AttnOutput] = "attn_output",
        [TensorRole.AttnQNorm] = "attn_q_norm",
        [TensorRole.AttnKNorm] = "attn_k_norm",
        [TensorRole.FfnNorm] = "ffn_norm",
        [TensorRole.FfnGate] = "ffn_gate",
        [TensorRole.FfnUp] = "ffn_up",
        [TensorRole.FfnDown] = "ffn_down",
    }.ToFrozenDictionary();

    private static readonly FrozenDictionary<string, TensorRole> ByName =
        Names.ToFrozenDictionary(kv => kv.Value, kv => kv.Key);

    /// <summary>Whether the role's tensors live in the repeating blocks (<c>blk.N.</c>).</summary>
    public static bool IsPerLayer(this TensorRole role) =>
        role is not (TensorRole.TokenEmbd or TensorRole.OutputNorm or TensorRole.Output);

    /// <summary>The role's base name, e.g. <c>attn_q</c>.</summary>
    public static string BaseName(this TensorRole role) => Names[role];

    /// <summary>The full tensor name, e.g. <c>blk.3.attn_q.weight</c> or <c>output.bias</c>.</summary>
    public static string TensorName(this TensorRole role, int layer = -1, string suffix = "weight") =>
        role.IsPerLayer()
            ? layer >= 0 ? $"{Squeeze.Models.TensorName.BlockPrefix}{layer}.{Names[role]}.{suffix}" : throw new ArgumentOutOfRangeException(nameof(layer), "a per-layer tensor needs its layer")
            : $"{Names[role]}.{suffix}";

    /// <summary>The role of a tensor name like <c>blk.3.ffn_down.weight</c>, or null if it is not one of the roles.</summary>
    public static TensorRole? RoleOf(string tensorName)
    {
        var name = tensorName;
        if (Models.TensorName.LayerOf(name) is not null) name = name[(name.IndexOf('.', Models.TensorName.BlockPrefix.Length) + 1)..];
        int dot = name.LastIndexOf('.');
        if (dot > 0) name = name[..dot];
        return ByName.TryGetValue(name, out var role) ? role : null;
    }
}
