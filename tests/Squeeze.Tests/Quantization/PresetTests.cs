using Squeeze.Gguf;
using Squeeze.Quantization;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Quantization;

/// <summary>
/// The mixture rules on models built in memory (names, shapes and metadata only: choosing types reads no weights), and
/// the parsing of --tensor-type, --override-kv and --prune-layers.
/// </summary>
public sealed class PresetTests
{
    /// <summary>A Qwen3-8B-like skeleton: 36 layers, 32 heads over 8 KV heads, rows of 4096 and 12288, each tensor 1-2 rows.</summary>
    private static GgufFile Skeleton(string arch = "qwen3", int layers = 36, int heads = 32, int kvHeads = 8, int experts = 0, bool tied = false, int nEmbd = 4096, int nFf = 12288)
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Architecture, GgufValue.String(arch));
        w.Set(GgufKeys.Arch.BlockCount(arch), GgufValue.UInt32((uint)layers));
        w.Set(GgufKeys.Arch.AttentionHeadCount(arch), GgufValue.UInt32((uint)heads));
        w.Set(GgufKeys.Arch.AttentionHeadCountKv(arch), GgufValue.UInt32((uint)kvHeads));
        if (experts > 0) w.Set(GgufKeys.Arch.ExpertCount(arch), GgufValue.UInt32((uint)experts));
        void Add(string name, params long[] shape) => w.AddTensor(name, GgmlType.F32, shape, new byte[shape.Aggregate(4L, (a, b) => a * b)]);
        Add("token_embd.weight", nEmbd, 2);
        if (!tied) Add("output.weight", nEmbd, 2);
        Add("output_norm.weight", nEmbd);
        for (int l = 0; l < layers; l++)
        {
            foreach (var n in new[] { "attn_q", "attn_k", "attn_v", "attn_output" }) Add($"blk.{l}.{n}.weight", nEmbd, 2);
            Add($"blk.{l}.attn_norm.weight", nEmbd);
            if (experts > 0)
            {
                Add($"blk.{l}.ffn_gate_inp.weight", nEmbd, experts);
                foreach (var n in new[] { "ffn_gate_exps", "ffn_up_exps" }) Add($"blk.{l}.{n}.weight", nEmbd, 1, experts);
                Add($"blk.{l}.ffn_down_exps.weight", nFf, 1, experts);
            }
            else
            {
                foreach (var n in new[] { "ffn_gate", "ffn_up" }) Add($"blk.{l}.{n}.weight", nEmbd, 2);
                Add($"blk.{l}.ffn_down.weight", nFf, 2);
            }
        }
        var ms = new MemoryStream();
        w.WriteTo(ms);
        return GgufFile.Read(ms.ToArray());
    }

    private static Dictionary<string, TensorPlan> Plan(GgufFile f, string type, PlanOptions? o = null) =>
        QuantizationPlan.Build(f, LlamaFileTypes.Parse(type), o ?? new PlanOptions()).Tensors.ToDictionary(t => t.Name);

    [Fact]
    public void Qwen3_8B_Q4_K_M_is_reference_md_s_worked_example()
    {
        using var f = Skeleton();
        var p = Plan(f, "Q4_K_M");
        int[] more = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32, 33, 34, 35];
        for (int l = 0; l < 36; l++)
        {
            var want = more.Contains(l) ? GgmlType.Q6_K : GgmlType.Q4_K;
            Assert.Equal(want, p[$"blk.{l}.attn_v.weight"].TargetType);
            Assert.Equal(want, p[$"blk.{l}.ffn_down.weight"].TargetType);
            Assert.Equal(GgmlType.Q4_K, p[$"blk.{l}.attn_q.weight"].TargetType);
            Assert.Equal(GgmlType.F32, p[$"blk.{l}.attn_norm.weight"].TargetType);
        }
        Assert.Equal(GgmlType.Q6_K, p["output.weight"].TargetType);
        Assert.Equal(GgmlType.Q4_K, p["token_embd.weight"].TargetType);
        Assert.Contains("use_more_bits", p["blk.0.attn_v.weight"].Reason);
    }

    [Fact]
    public void A_user_rule_takes_the_tensor_out_of_the_counters()
    {
        // Q3_K_M gives the first two attn_v Q5_K; a rule on layer 0 makes layers 1 and 2 the first two the preset sees.
        using var f = Skeleton(layers: 8);
        var p = Plan(f, "Q3_K_M", new PlanOptions { TensorTypes = [TensorTypeRule.Parse(@"blk\.0\.attn_v=q8_0")] });
        Assert.Equal(GgmlType.Q8_0, p["blk.0.attn_v.weight"].TargetType);
        Assert.Equal(GgmlType.Q5_K, p["blk.1.attn_v.weight"].TargetType);
        Assert.Equal(GgmlType.Q5_K, p["blk.2.attn_v.weight"].TargetType);
        Assert.Equal(GgmlType.Q4_K, p["blk.3.attn_v.weight"].TargetType);
        Assert.StartsWith("--tensor-type", p["blk.0.attn_v.weight"].Reason);
    }

    [Fact]
    public void Tied_embeddings_follow_the_output_rules()
    {
        using var f = Skeleton(layers: 2, tied: true);
        Assert.Equal(GgmlType.Q6_K, Plan(f, "Q4_K_M")["token_embd.weight"].TargetType);
        Assert.Equal(GgmlType.Q8_0, Plan(f, "Q4_K_M", new PlanOptions { OutputTensorType = GgmlType.Q8_0 })["token_embd.weight"].TargetType);
        Assert.Equal(GgmlType.Q5_K, Plan(f, "IQ2_XXS")["token_embd.weight"].TargetType);
    }

    [Fact]
    public void Seventy_B_and_eight_expert_rules()
    {
        using var big = Skeleton(arch: "llama", layers: 80, heads: 64, kvHeads: 8, nEmbd: 256, nFf: 256);
        var p = Plan(big, "Q3_K_S");
        Assert.Equal(GgmlType.Q5_K, p["blk.40.attn_v.weight"].TargetType); // Q3_K raised for 70B
        using var moe = Skeleton(arch: "llama", layers: 32, heads: 32, kvHeads: 8, experts: 8, nEmbd: 256, nFf: 256);
        p = Plan(moe, "Q4_K_M");
        Assert.Equal(GgmlType.Q8_0, p["blk.5.attn_v.weight"].TargetType);
        Assert.Equal(GgmlType.Q8_0, p["blk.5.attn_k.weight"].TargetType);
        Assert.Equal(GgmlType.Q5_K, p["blk.5.attn_output.weight"].TargetType);
        Assert.Equal(GgmlType.Q6_K, p["blk.0.ffn_down_exps.weight"].TargetType); // the layer is read from the name
        Assert.Equal(GgmlType.F32, p["blk.0.ffn_gate_inp.weight"].TargetType);
    }

    [Fact]
    public void Imatrix_changes_some_mixtures()
    {
        using var f = Skeleton(layers: 8, heads: 8, kvHeads: 4); // GQA 2
        Assert.Equal(GgmlType.IQ3_S, Plan(f, "IQ3_XXS")["blk.0.attn_v.weight"].TargetType);
        Assert.Equal(GgmlType.IQ3_XXS, Plan(f, "IQ3_XXS", new PlanOptions { HasImatrix = true })["blk.0.attn_v.weight"].TargetType);
        Assert.Equal(GgmlType.Q4_0, Plan(f, "Q4_0")["blk.0.ffn_down.weight"].TargetType);
        Assert.Equal(GgmlType.Q4_1, Plan(f, "Q4_0", new PlanOptions { HasImatrix = true })["blk.0.ffn_down.weight"].TargetType);
    }

    [Fact]
    public void Pruning_renumbers_and_rewrites_the_block_count()
    {
        using var f = Skeleton(layers: 6);
        var plan = QuantizationPlan.Build(f, LlamaFileTypes.Parse("Q8_0"), new PlanOptions { PruneLayers = [4, 1, 4] });
        var names = plan.Tensors.Select(t => t.Name).ToHashSet();
        Assert.Contains("blk.0.attn_q.weight", names);
        Assert.Contains("blk.3.attn_q.weight", names);
        Assert.DoesNotContain("blk.4.attn_q.weight", names);
        Assert.Equal("blk.5.attn_q.weight", plan.Tensors.Single(t => t.Name == "blk.3.attn_q.weight").Tensor.Name);
        Assert.Equal(new KeyValuePair<string, uint>("qwen3.block_count", 4), plan.BlockCount);
        Assert.Equal(16, plan.Dropped.Count); // 8 tensors in each of 2 blocks
        Assert.Throws<InvalidInputException>(() => new LayerPruning([-1]));
    }

    [Theory]
    [InlineData(@"\.([0-9]|1[01257]|31)\.ATTN_K=Q4_K", @"\.([0-9]|1[01257]|31)\.attn_k", GgmlType.Q4_K)]
    [InlineData(@"\D=f16", @"\d", GgmlType.F16)] // lower-cased as llama-quantize does, \D included
    [InlineData("a=b=q8_0", "a", null)]
    public void Tensor_type_rules_parse_as_llama_quantize(string text, string pattern, GgmlType? type)
    {
        if (type is null)
        {
            Assert.Throws<InvalidInputException>(() => TensorTypeRule.Parse(text));
            return;
        }
        var r = TensorTypeRule.Parse(text);
        Assert.Equal(pattern, r.Pattern);
        Assert.Equal(type, r.Type);
    }

    [Fact]
    public void Tensor_type_rules_search_the_name()
    {
        var r = TensorTypeRule.Parse(@"\.(\d*[13579])\.attn_k=q5_k");
        Assert.True(r.Matches("blk.13.attn_k.weight"));
        Assert.False(r.Matches("blk.12.attn_k.weight"));
        Assert.Equal(2, TensorTypeRule.ParseText(" a=q8_0\n\tb=Q4_K \r\n").Count);
        Assert.Throws<InvalidInputException>(() => TensorTypeRule.Parse("=q8_0"));
        Assert.Throws<InvalidInputException>(() => TensorTypeRule.Parse("attn="));
        Assert.Throws<InvalidInputException>(() => TensorTypeRule.Parse("attn=q8_k"));
        Assert.Throws<InvalidInputException>(() => TensorTypeRule.Parse("(attn=q8_0"));
    }

    [Theory]
    [InlineData("k=int:-5x", MetadataOverrideKind.Int, "u32 5")]
    [InlineData("k=int:abc", MetadataOverrideKind.Int, "u32 0")]
    [InlineData("k=float:2.5e1junk", MetadataOverrideKind.Float, "f32 25")]
    [InlineData("k=bool:false", MetadataOverrideKind.Bool, "bool false")]
    [InlineData("k=str:a=b", MetadataOverrideKind.Str, "str a=b")]
    public void Overrides_parse_as_llama_cpp(string text, MetadataOverrideKind kind, string value)
    {
        var o = MetadataOverride.Parse(text);
        Assert.Equal("k", o.Key);
        Assert.Equal(kind, o.Kind);
        Assert.Equal(value, $"{o.Value.Type.ShortName()} {o.Value}");
    }

    [Theory]
    [InlineData("k")]
    [InlineData("=int:1")]
    [InlineData("k=u32:1")]
    [InlineData("k=bool:1")]
    public void Malformed_overrides_are_refused(string text) => Assert.Throws<InvalidInputException>(() => MetadataOverride.Parse(text));

    [Fact]
    public void A_bad_alignment_override_is_refused() =>
        Assert.Throws<InvalidInputException>(() => MetadataOverride.Parse("general.alignment=int:48").Validate());

    [Fact]
    public void Copy_keeps_everything_and_the_input_s_file_type()
    {
        using var f = Skeleton(layers: 1);
        var plan = QuantizationPlan.Build(f, LlamaFileTypes.Parse("COPY"), new PlanOptions());
        Assert.All(plan.Tensors, t => Assert.False(t.Converts));
        Assert.Equal((LlamaFileType)(0 | QuantizationPlan.GuessedFlag), plan.FileType); // all F32, no general.file_type
    }
}
