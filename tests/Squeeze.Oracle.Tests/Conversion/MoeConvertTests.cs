using Squeeze.Conversion;
using Squeeze.Gguf;
using Squeeze.Numerics;
using Squeeze.Quants;
using Squeeze.Tests;
using Xunit;

namespace Squeeze.Oracle.Tests.Conversion;

/// <summary>Qwen3-MoE: per-expert weights stacked into 3-D tensors that llama.cpp loads.</summary>
public sealed class MoeConvertTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("squeeze-moe-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static readonly HfCheckpoints.Spec Spec = new("Qwen3MoeForCausalLM", Hidden: 64, Heads: 4, KvHeads: 2, HeadDim: 16, FeedForward: 96,
        Layers: 2, Experts: 4, ExpertsUsed: 2, ExpertFeedForward: 32);

    [Fact]
    public void A_qwen3_moe_checkpoint_converts_to_stacked_experts_that_llama_cpp_loads()
    {
        string model = Path.Combine(_root, "tiny-qwen3-moe");
        HfCheckpoints.Write(model, Spec, TestData.Require("tokenizers/qwen3"));
        string output = Path.Combine(_root, "moe.gguf");
        var summary = HfConverter.Convert(model, output, new ConvertOptions { OutType = ConvertOutType.BF16 }, cancellation: TestContext.Current.CancellationToken);
        Assert.Equal("qwen3moe", summary.Architecture);

        var probe = OracleModel.Probe(output);
        Assert.NotNull(probe);
        Assert.Equal(Spec.Layers, probe.Value.Layers);

        using var f = GgufFile.Open(output);
        Assert.Equal(4u, f[GgufKeys.Arch.ExpertCount("qwen3moe")].Value);
        Assert.Equal(2u, f[GgufKeys.Arch.ExpertUsedCount("qwen3moe")].Value);
        Assert.Equal(32u, f[GgufKeys.Arch.ExpertFeedForwardLength("qwen3moe")].Value);
        Assert.Equal([64L, 32, 4], f.FindTensor("blk.1.ffn_gate_exps.weight")!.Shape);
        Assert.Equal([32L, 64, 4], f.FindTensor("blk.1.ffn_down_exps.weight")!.Shape);
        var router = f.FindTensor("blk.0.ffn_gate_inp.weight")!;
        Assert.Equal(GgmlType.F32, router.Type);
        Assert.Equal([64L, 4], router.Shape);

        // Expert e's slice of the stacked tensor holds expert e's weights.
        var up = f.FindTensor("blk.0.ffn_up_exps.weight")!;
        var bytes = f.GetTensorBytes(up);
        int slice = 64 * 32 * 2;
        for (int e = 0; e < Spec.Experts; e++)
        {
            var values = HfCheckpoints.Values($"model.layers.0.mlp.experts.{e}.up_proj.weight", [32, 64], Spec.Seed);
            Assert.True(HfCheckpoints.Encode("BF16", values).AsSpan().SequenceEqual(bytes.Slice(e * slice, slice)), $"expert {e}");
        }
        // The merged tensors of a block come where its last expert was read, in down, gate, up order.
        var names = f.Tensors.Select(t => t.Name).ToList();
        int down = names.IndexOf("blk.0.ffn_down_exps.weight");
        Assert.Equal(["blk.0.ffn_down_exps.weight", "blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight"], names.Skip(down).Take(3));
    }
}
