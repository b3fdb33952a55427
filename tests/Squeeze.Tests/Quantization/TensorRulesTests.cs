using Squeeze.Gguf;
using Squeeze.Quantization;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Quantization;

public class TensorRulesTests
{
    [Theory]
    [InlineData("blk.0.attn_q.weight", new long[] { 4096, 4096 }, true)]
    [InlineData("blk.0.ffn_down_exps.weight", new long[] { 1024, 4096, 8 }, true)]
    [InlineData("token_embd.weight", new long[] { 4096, 32000 }, true)]
    [InlineData("output.weight", new long[] { 4096, 32000 }, true)]
    [InlineData("blk.0.attn_norm.weight", new long[] { 4096 }, false)]
    [InlineData("blk.0.attn_q_norm.weight", new long[] { 128, 1 }, false)]
    [InlineData("blk.0.attn_q.weight", new long[] { 4096, 1 }, false)] // ggml counts [4096, 1] as 1-D
    [InlineData("blk.0.attn_q.bias", new long[] { 4096, 2 }, false)]
    [InlineData("blk.0.ffn_gate_inp.weight", new long[] { 4096, 8 }, false)]
    [InlineData("blk.0.ffn_norm.weight", new long[] { 4096, 2 }, false)]
    [InlineData("position_embd.weight", new long[] { 768, 1024 }, false)]
    [InlineData("token_types.weight", new long[] { 768, 2 }, false)]
    [InlineData("blk.0.ssm_conv1d.weight", new long[] { 4, 1536 }, false)]
    [InlineData("blk.0.time_mix_w1.weight", new long[] { 64, 64 }, false)]
    [InlineData("blk.0.attn_rel_b.weight", new long[] { 32, 12 }, false)]
    [InlineData("v.patch_embd.weight", new long[] { 14, 14, 3, 1024 }, false)]
    public void Quantizes_what_llama_cpp_quantizes(string name, long[] shape, bool expected)
    {
        var q = QuantizableTensors.Check(name, shape);
        Assert.Equal(expected, q.Allowed);
        Assert.False(string.IsNullOrEmpty(q.Reason));
    }

    [Fact]
    public void Leave_output_tensor_keeps_output_weight_only()
    {
        Assert.False(QuantizableTensors.Check("output.weight", [64, 512], quantizeOutput: false).Allowed);
        Assert.True(QuantizableTensors.Check("token_embd.weight", [64, 512], quantizeOutput: false).Allowed);
    }

    [Theory]
    [InlineData(GgmlType.Q4_K, 256, GgmlType.Q4_K, false)]
    [InlineData(GgmlType.Q4_K, 640, GgmlType.Q5_0, true)]
    [InlineData(GgmlType.Q5_K, 640, GgmlType.Q5_1, true)]
    [InlineData(GgmlType.Q6_K, 640, GgmlType.Q8_0, true)]
    [InlineData(GgmlType.Q2_K, 64, GgmlType.Q4_0, true)]
    [InlineData(GgmlType.Q3_K, 64, GgmlType.Q4_0, true)]
    [InlineData(GgmlType.TQ1_0, 96, GgmlType.Q4_0, true)]
    [InlineData(GgmlType.Q2_0, 96, GgmlType.Q4_0, true)]
    [InlineData(GgmlType.IQ2_XXS, 64, GgmlType.IQ4_NL, true)]
    [InlineData(GgmlType.IQ4_XS, 640, GgmlType.IQ4_NL, true)]
    [InlineData(GgmlType.Q4_K, 172, GgmlType.F16, true)] // stories260K's ffn_down
    [InlineData(GgmlType.IQ3_S, 172, GgmlType.F16, true)]
    [InlineData(GgmlType.Q4_0, 64, GgmlType.Q4_0, false)]
    public void Falls_back_as_llama_cpp(GgmlType chosen, long rowLength, GgmlType expected, bool changed)
    {
        var (type, reason) = TypeFallback.Apply("t", rowLength, chosen);
        Assert.Equal(expected, type);
        Assert.Equal(changed, reason is not null);
    }

    [Theory]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.IQ4_NL)]
    [InlineData(GgmlType.MXFP4)]
    [InlineData(GgmlType.NVFP4)]
    [InlineData(GgmlType.Q1_0)]
    public void Refuses_rows_that_fit_no_fallback(GgmlType chosen)
    {
        var e = Assert.Throws<QuantizationException>(() => TypeFallback.Apply("blk.0.ffn_down.weight", 172, chosen));
        Assert.Contains("blk.0.ffn_down.weight", e.Message);
        Assert.Contains("no fallback", e.Message);
    }

    [Fact]
    public void Every_fallback_target_has_32_element_blocks()
    {
        foreach (var r in TypeFallback.Rules) Assert.Equal(32, GgmlTypes.Get(r.To).BlockSize);
    }

    [Fact]
    public void Orders_tensors_as_llama_cpps_loader()
    {
        string[] names = ["token_embd.weight", "blk.10.attn_q.weight", "blk.2.ffn_up.weight", "blk.2.attn_k.weight", "output.weight", "blk.0.x.weight", "output_norm.weight"];
        var infos = names.Select(n => new GgufTensorInfo(n, GgmlType.F32, [32, 2], 0));
        var ordered = QuantizationPlan.LlamaOrder(infos).Select(t => t.Name).ToArray();
        Assert.Equal(["output.weight", "output_norm.weight", "token_embd.weight", "blk.0.x.weight", "blk.2.attn_k.weight", "blk.2.ffn_up.weight", "blk.10.attn_q.weight"], ordered);
    }

    [Theory]
    [InlineData("blk.12.attn_q.weight", 12)]
    [InlineData("blk.0", 0)]
    [InlineData("blk.x.attn_q.weight", -1)]
    [InlineData("token_embd.weight", -1)]
    public void Reads_block_numbers_as_sscanf(string name, long expected) => Assert.Equal(expected, QuantizationPlan.BlockNumber(name));

    [Theory]
    [InlineData("blk.0.attn_q.weight", GgmlType.IQ2_XXS, LlamaFileType.IQ2_XXS, true)]
    [InlineData("blk.0.attn_q.weight", GgmlType.IQ3_S, LlamaFileType.IQ3_S, false)]
    [InlineData("token_embd.weight", GgmlType.IQ1_S, LlamaFileType.IQ1_S, false)]
    [InlineData("output.weight", GgmlType.IQ2_XS, LlamaFileType.IQ2_XS, false)]
    [InlineData("blk.0.attn_q.weight", GgmlType.Q2_K, LlamaFileType.Q2_K, false)]
    [InlineData("blk.0.attn_q.weight", GgmlType.Q2_K, LlamaFileType.Q2_K_S, true)]
    public void Knows_which_tensors_need_an_imatrix(string name, GgmlType type, LlamaFileType fileType, bool expected) =>
        Assert.Equal(expected, ImatrixRequirement.Requires(name, type, fileType));
}
