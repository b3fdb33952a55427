using Squeeze.Quants;
using F = Squeeze.Quantization.LlamaFileType;

namespace Squeeze.Quantization;

/// <summary>The running counts llama.cpp keeps while choosing types (which one a section advances).</summary>
public enum PresetCounter
{
    None,
    AttentionV,
    FfnDown,
    FfnGate,
    FfnUp,
}

/// <summary>
/// One rule of a preset: when <see cref="When"/> holds, the tensor gets <see cref="Type"/> (or, with a null type, keeps
/// the type it has: the rule only stops the rules after it, as a branch of llama.cpp's chain that sets nothing does).
/// </summary>
/// <param name="Reason">Why, in words (<c>--dry-run</c> prints it).</param>
/// <param name="When">The condition.</param>
/// <param name="Type">The type chosen, or null to keep the current one.</param>
/// <param name="Derive">For the few rules whose result depends on the type so far: computes it instead of <paramref name="Type"/>.</param>
public sealed record PresetRule(string Reason, Func<TensorContext, bool> When, GgmlType? Type, Func<TensorContext, GgmlType, GgmlType>? Derive = null)
{
    /// <summary>The type after this rule, given the type before it.</summary>
    public GgmlType Apply(TensorContext context, GgmlType current) => Derive is not null ? Derive(context, current) : Type ?? current;
}

/// <summary>
/// A group of rules for one kind of tensor. The first section whose <see cref="Applies"/> holds is the tensor's section;
/// in it the first matching rule sets the type, then every matching adjustment applies in turn; finally the section's
/// counter advances (whatever the rules did), as llama.cpp's counters do.
/// </summary>
public sealed record PresetSection(string Name, Func<TensorContext, bool> Applies, PresetCounter Counter, IReadOnlyList<PresetRule> Rules,
    IReadOnlyList<PresetRule>? Adjustments = null);

/// <summary>The type a preset chose, and the reasons.</summary>
public readonly record struct PresetChoice(GgmlType Type, string Reason, PresetCounter Counter);

/// <summary>
/// The mixture rules of every llama.cpp file type (<c>llama_tensor_get_type_impl</c>, src/llama-quant.cpp at 815a2a591),
/// as data. Each rule reads a <see cref="TensorContext"/>; types start at the file type's default type.
/// <para>
/// Notes on the oracle's version: the fused <c>attn_qkv</c> and MLA <c>attn_kv_b</c> count as attn_v
/// (<c>category_is_attn_v</c>), so llama.cpp's separate attn_qkv rules are never reached and are not listed; the
/// low-bit i-quant mixes (F.IQ1_S ... F.IQ2_M) use the raw ffn_down count even in models with experts.
/// </para>
/// </summary>
public static class Presets
{
    private static bool Is(TensorContext c, params LlamaFileType[] types) => Array.IndexOf(types, c.FileType) >= 0;

    /// <summary>The file types whose low-bit i-quant mix has its own rules.</summary>
    private static readonly LlamaFileType[] LowBitIQuants = [F.IQ2_XXS, F.IQ2_XS, F.IQ1_S, F.IQ2_S, F.IQ2_M, F.IQ1_M];

    /// <summary>File types whose output tensor is Q5_K.</summary>
    private static readonly LlamaFileType[] Q5KOutput = [F.IQ2_XXS, F.IQ2_XS, F.IQ3_XXS, F.IQ1_S, F.IQ2_S, F.IQ2_M, F.IQ1_M];

    /// <summary>File types whose attn_output is Q5_K in models with 8 experts.</summary>
    private static readonly LlamaFileType[] EightExpertAttnOutput = [F.Q2_K, F.IQ3_XS, F.IQ3_XXS, F.Q3_K_S, F.Q3_K_M, F.IQ4_NL, F.Q4_K_S, F.Q4_K_M, F.IQ3_S, F.IQ3_M, F.IQ4_XS];

    private static bool MiddleLayers(TensorContext c) => c.Layer >= c.LayerCount / 8 && c.Layer < 7 * c.LayerCount / 8;

    /// <summary>The sections, in llama.cpp's order.</summary>
    public static IReadOnlyList<PresetSection> Sections { get; } =
    [
        new("output (and tied token embeddings)",
            c => c.Category == TensorCategory.Output || (c.TiedEmbeddings && c.Category == TensorCategory.TokenEmbedding),
            PresetCounter.None,
            [
                new("tied token embeddings take --output-tensor-type", c => c.OutputTensorType is not null, null, (c, _) => c.OutputTensorType!.Value),
                new("MXFP4_MOE: output Q8_0", c => c.FileType == F.MXFP4_MOE, GgmlType.Q8_0),
                new("output Q8_0: Falcon", c => c.Model.IsFalcon, GgmlType.Q8_0),
                new("output Q8_0: rows do not fit the default type's block", c => c.RowLength % GgmlTypes.Get(c.DefaultType).BlockSize != 0, GgmlType.Q8_0),
                new("low-bit i-quant mix: output Q5_K", c => Is(c, Q5KOutput), GgmlType.Q5_K),
                new("output Q6_K", c => c.DefaultType != GgmlType.Q8_0, GgmlType.Q6_K),
                new("output keeps Q8_0", _ => true, null),
            ]),
        new("MXFP4_MOE", c => c.FileType == F.MXFP4_MOE, PresetCounter.None,
            [
                new("MXFP4_MOE: expert tensors MXFP4", c => c.Matrices > 1, GgmlType.MXFP4),
                new("MXFP4_MOE: non-expert tensors Q8_0", _ => true, GgmlType.Q8_0),
            ]),
        new("token embeddings", c => c.Category == TensorCategory.TokenEmbedding, PresetCounter.None,
            [
                new("IQ1/IQ2_XXS/IQ2_XS mix: token embeddings Q2_K", c => Is(c, F.IQ2_XXS, F.IQ2_XS, F.IQ1_S, F.IQ1_M), GgmlType.Q2_K),
                new("IQ2_S/IQ2_M mix: token embeddings IQ3_S", c => Is(c, F.IQ2_S, F.IQ2_M), GgmlType.IQ3_S),
                new("IQ3_XXS mix: token embeddings IQ3_S", c => Is(c, F.IQ3_XXS), GgmlType.IQ3_S),
                new("ternary/Q2_0 file: token embeddings Q4_K", c => Is(c, F.TQ1_0, F.TQ2_0, F.Q2_0), GgmlType.Q4_K),
            ]),
        new("low-bit i-quant mix: attn_v", c => Is(c, LowBitIQuants) && c.Category.IsAttentionV(), PresetCounter.AttentionV,
            [
                new("low-bit i-quant mix: attn_v Q4_K (GQA >= 4 or >= 4 experts)", c => c.Gqa >= 4 || c.Model.ExpertCount >= 4, GgmlType.Q4_K),
                new("IQ2_S/IQ2_M mix: attn_v IQ3_S", c => Is(c, F.IQ2_S, F.IQ2_M), GgmlType.IQ3_S),
                new("low-bit i-quant mix: attn_v Q2_K", _ => true, GgmlType.Q2_K),
            ]),
        new("low-bit i-quant mix: attn_k with 8 experts", c => Is(c, LowBitIQuants) && c.Model.ExpertCount == 8 && c.Category == TensorCategory.AttentionK,
            PresetCounter.None,
            [new("low-bit i-quant mix, 8 experts: attn_k Q4_K", _ => true, GgmlType.Q4_K)]),
        new("low-bit i-quant mix: ffn_down", c => Is(c, LowBitIQuants) && c.Category == TensorCategory.FfnDown, PresetCounter.FfnDown,
            [
                new("IQ2_S/IQ2_M mix: ffn_down IQ3_S in the first eighth", c => c.Position < c.LayerCount / 8 && Is(c, F.IQ2_S, F.IQ2_M), GgmlType.IQ3_S),
                new("low-bit i-quant mix: ffn_down Q2_K in the first eighth", c => c.Position < c.LayerCount / 8, GgmlType.Q2_K),
            ]),
        new("low-bit i-quant mix: attn_output", c => Is(c, LowBitIQuants) && c.Category == TensorCategory.AttentionOutput, PresetCounter.None,
            [
                new("low-bit i-quant mix, 8 experts: attn_output Q5_K", c => c.Model.ExpertCount == 8, GgmlType.Q5_K),
                new("IQ1 mix: attn_output IQ2_XXS", c => Is(c, F.IQ1_S, F.IQ1_M), GgmlType.IQ2_XXS),
                new("IQ2_S/IQ2_M mix: attn_output IQ3_S", c => Is(c, F.IQ2_S, F.IQ2_M), GgmlType.IQ3_S),
            ]),
        new("low-bit i-quant mix: other tensors", c => Is(c, LowBitIQuants), PresetCounter.None, []),
        new("attn_v", c => c.Category.IsAttentionV(), PresetCounter.AttentionV,
            [
                new("Q2_K: attn_v Q4_K (GQA >= 4)", c => c.FileType == F.Q2_K && c.Gqa >= 4, GgmlType.Q4_K),
                new("Q2_K: attn_v Q3_K", c => c.FileType == F.Q2_K, GgmlType.Q3_K),
                new("Q2_K_S: attn_v Q4_K (GQA >= 4)", c => c.FileType == F.Q2_K_S && c.Gqa >= 4, GgmlType.Q4_K),
                new("IQ3_XXS: attn_v Q4_K (GQA >= 4)", c => c.FileType == F.IQ3_XXS && c.Gqa >= 4, GgmlType.Q4_K),
                new("IQ3_XXS without imatrix: attn_v IQ3_S", c => c.FileType == F.IQ3_XXS && !c.HasImatrix, GgmlType.IQ3_S),
                new("IQ3_XXS with imatrix: attn_v IQ3_XXS", c => c.FileType == F.IQ3_XXS, GgmlType.IQ3_XXS),
                new("IQ3_XS/IQ3_S: attn_v Q4_K (GQA >= 4)", c => Is(c, F.IQ3_XS, F.IQ3_S) && c.Gqa >= 4, GgmlType.Q4_K),
                new("IQ3_M: attn_v Q4_K", c => c.FileType == F.IQ3_M, GgmlType.Q4_K),
                new("Q3_K_M: attn_v Q5_K for the first two", c => c.FileType == F.Q3_K_M && c.Position < 2, GgmlType.Q5_K),
                new("Q3_K_M: attn_v Q4_K", c => c.FileType == F.Q3_K_M, GgmlType.Q4_K),
                new("Q3_K_L: attn_v Q5_K", c => c.FileType == F.Q3_K_L, GgmlType.Q5_K),
                new("IQ4_NL/IQ4_XS: attn_v Q5_K (GQA >= 4)", c => Is(c, F.IQ4_NL, F.IQ4_XS) && c.Gqa >= 4, GgmlType.Q5_K),
                new("Q4_K_M/Q5_K_M: attn_v Q6_K in use_more_bits layers (first and last eighth, every third between)",
                    c => Is(c, F.Q4_K_M, F.Q5_K_M) && TensorContext.UseMoreBits(c.Position, c.PositionCount), GgmlType.Q6_K),
                new("Q4_K_S: attn_v Q5_K for the first four", c => c.FileType == F.Q4_K_S && c.Position < 4, GgmlType.Q5_K),
            ],
            [
                new("70B: attn_v Q3_K/Q4_K raised to Q5_K (8 heads share it)", c => c.Model.Is70B, null,
                    (_, t) => t is GgmlType.Q3_K or GgmlType.Q4_K ? GgmlType.Q5_K : t),
                new("8 experts: attn_v Q8_0", c => c.Model.ExpertCount == 8, GgmlType.Q8_0),
            ]),
        new("attn_k", c => c.Category == TensorCategory.AttentionK, PresetCounter.None,
            [
                new("8 experts: attn_k Q8_0", c => c.Model.ExpertCount == 8, GgmlType.Q8_0),
                new("IQ3_XS: attn_k IQ3_XXS", c => c.FileType == F.IQ3_XS, GgmlType.IQ3_XXS),
                new("IQ3_XXS: attn_k IQ2_S", c => c.FileType == F.IQ3_XXS, GgmlType.IQ2_S),
            ]),
        new("attn_q", c => c.Category == TensorCategory.AttentionQ, PresetCounter.None,
            [
                new("IQ3_XS: attn_q IQ3_XXS", c => c.FileType == F.IQ3_XS, GgmlType.IQ3_XXS),
                new("IQ3_XXS: attn_q IQ2_S", c => c.FileType == F.IQ3_XXS, GgmlType.IQ2_S),
            ]),
        new("ffn_down", c => c.Category == TensorCategory.FfnDown, PresetCounter.FfnDown,
            [
                new("Q2_K: ffn_down Q3_K", c => c.FileType == F.Q2_K, GgmlType.Q3_K),
                new("Q2_K_S: ffn_down Q4_K in the first eighth", c => c.FileType == F.Q2_K_S && c.Layer < c.LayerCount / 8, GgmlType.Q4_K),
                new("Q2_K_S: ffn_down keeps Q2_K after the first eighth", c => c.FileType == F.Q2_K_S, null),
                new("IQ3_XXS without imatrix: ffn_down Q4_K in the first eighth", c => c.FileType == F.IQ3_XXS && !c.HasImatrix && c.Layer < c.LayerCount / 8, GgmlType.Q4_K),
                new("IQ3_XXS without imatrix: ffn_down Q3_K", c => c.FileType == F.IQ3_XXS && !c.HasImatrix, GgmlType.Q3_K),
                new("Q3_K_M: ffn_down Q5_K in the first sixteenth", c => c.FileType == F.Q3_K_M && c.Layer < c.LayerCount / 16, GgmlType.Q5_K),
                new("Q3_K_M: ffn_down Q4_K", c => c.FileType == F.Q3_K_M && (!c.Model.IsFalcon || TensorContext.UseMoreBits(c.Layer, c.LayerCount)), GgmlType.Q4_K),
                new("Q3_K_M, Falcon: ffn_down Q3_K outside use_more_bits layers", c => c.FileType == F.Q3_K_M, GgmlType.Q3_K),
                new("IQ3_M: ffn_down Q4_K in the first eighth (and use_more_bits layers with 8 experts)",
                    c => c.FileType == F.IQ3_M && (c.Layer < c.LayerCount / 8 || (c.Model.ExpertCount == 8 && TensorContext.UseMoreBits(c.Layer, c.LayerCount))), GgmlType.Q4_K),
                new("Q3_K_L, Falcon: ffn_down Q4_K", c => c.FileType == F.Q3_K_L && c.Model.IsFalcon, GgmlType.Q4_K),
                new("Q3_K_L: ffn_down Q5_K", c => c.FileType == F.Q3_K_L, GgmlType.Q5_K),
                new("Q4_K_M, Falcon: ffn_down Q6_K in the first sixteenth", c => c.FileType == F.Q4_K_M && c.Model.IsFalcon && c.Layer < c.LayerCount / 16, GgmlType.Q6_K),
                new("Q4_K_M, Falcon: ffn_down Q5_K in use_more_bits layers", c => c.FileType == F.Q4_K_M && c.Model.IsFalcon && TensorContext.UseMoreBits(c.Layer, c.LayerCount), GgmlType.Q5_K),
                new("Q4_K_M, Falcon: ffn_down Q4_K", c => c.FileType == F.Q4_K_M && c.Model.IsFalcon, GgmlType.Q4_K),
                new("Q4_K_M: ffn_down Q6_K in use_more_bits layers (first and last eighth, every third between)",
                    c => c.FileType == F.Q4_K_M && TensorContext.UseMoreBits(c.Layer, c.LayerCount), GgmlType.Q6_K),
                new("Q4_K_M: ffn_down keeps Q4_K outside use_more_bits layers", c => c.FileType == F.Q4_K_M, null),
                new("IQ4_NL/IQ4_XS without imatrix: ffn_down Q5_K in the first eighth",
                    c => c.Layer < c.LayerCount / 8 && Is(c, F.IQ4_NL, F.IQ4_XS) && !c.HasImatrix, GgmlType.Q5_K),
                new("Q5_K_M: ffn_down Q6_K in use_more_bits layers", c => c.FileType == F.Q5_K_M && TensorContext.UseMoreBits(c.Layer, c.LayerCount), GgmlType.Q6_K),
                new("Q4_K_S: ffn_down Q5_K in the first eighth", c => c.FileType == F.Q4_K_S && !c.Model.IsFalcon && c.Layer < c.LayerCount / 8, GgmlType.Q5_K),
                new("Q4_0 with imatrix: ffn_down Q4_1 in the first eighth", c => c.FileType == F.Q4_0 && c.HasImatrix && c.Layer < c.LayerCount / 8, GgmlType.Q4_1),
                new("Q5_0 with imatrix: ffn_down Q5_1 in the first eighth", c => c.FileType == F.Q5_0 && c.HasImatrix && c.Layer < c.LayerCount / 8, GgmlType.Q5_1),
            ]),
        new("attn_output", c => c.Category == TensorCategory.AttentionOutput, PresetCounter.None,
            [
                new("Falcon, Q3_K_L: attn_output Q4_K", c => c.Model.IsFalcon && c.FileType == F.Q3_K_L, GgmlType.Q4_K),
                new("Falcon: attn_output keeps the default type", c => c.Model.IsFalcon, null),
                new("8 experts: attn_output Q5_K", c => c.Model.ExpertCount == 8 && Is(c, EightExpertAttnOutput), GgmlType.Q5_K),
                new("8 experts: attn_output keeps the default type", c => c.Model.ExpertCount == 8, null),
                new("Q2_K: attn_output Q3_K", c => c.FileType == F.Q2_K, GgmlType.Q3_K),
                new("IQ3_XXS: attn_output IQ3_S", c => c.FileType == F.IQ3_XXS, GgmlType.IQ3_S),
                new("Q3_K_M: attn_output Q4_K", c => c.FileType == F.Q3_K_M, GgmlType.Q4_K),
                new("Q3_K_L: attn_output Q5_K", c => c.FileType == F.Q3_K_L, GgmlType.Q5_K),
                new("IQ3_M: attn_output Q4_K", c => c.FileType == F.IQ3_M, GgmlType.Q4_K),
            ]),
        new("ffn_gate", c => c.Category == TensorCategory.FfnGate, PresetCounter.FfnGate,
            [new("IQ3_XS: ffn_gate IQ3_XXS in the middle layers", c => c.FileType == F.IQ3_XS && MiddleLayers(c), GgmlType.IQ3_XXS)]),
        new("ffn_up", c => c.Category == TensorCategory.FfnUp, PresetCounter.FfnUp,
            [new("IQ3_XS: ffn_up IQ3_XXS in the middle layers", c => c.FileType == F.IQ3_XS && MiddleLayers(c), GgmlType.IQ3_XXS)]),
    ];

    /// <summary>
    /// The preset's type for the tensor of <paramref name="context"/> (before the row-size fallback), the reasons, and
    /// which counter the tensor advances.
    /// </summary>
    public static PresetChoice Choose(TensorContext context)
    {
        var type = context.DefaultType;
        string fileType = LlamaFileTypes.Get(context.FileType).Name;
        foreach (var section in Sections)
        {
            if (!section.Applies(context)) continue;
            var reasons = new List<string>();
            foreach (var rule in section.Rules)
            {
                if (!rule.When(context)) continue;
                type = rule.Apply(context, type);
                reasons.Add(rule.Reason);
                break;
            }
            foreach (var adj in section.Adjustments ?? [])
            {
                if (!adj.When(context)) continue;
                var adjusted = adj.Apply(context, type);
                if (adjusted != type) reasons.Add(adj.Reason);
                type = adjusted;
            }
            if (reasons.Count == 0) reasons.Add($"{fileType}: {section.Name} keeps the default type {type.Name()}");
            return new PresetChoice(type, string.Join("; ", reasons), section.Counter);
        }
        return new PresetChoice(type, $"{fileType}: default type {type.Name()}", PresetCounter.None);
    }
}
