using Squeeze.Imatrix;
using Xunit;

namespace Squeeze.Tests.Imatrix;

/// <summary>The statistics against values worked out by hand on small imatrices.</summary>
public sealed class ImatrixStatisticsTests
{
    private const float Tol = 1e-5f;

    /// <summary>
    /// blk.0.attn_q: means [1, 2, 3, 4], Σx means [1, −1, 0, 2]; blk.1.attn_q: means all 1 (σ = 0), Σx means [1, 1, −1, −1];
    /// blk.0.ffn_up_exps: expert 0 means [1, 2, 3], expert 1 never routed (count 0); blk.1.ffn_up_exps: no expert routed;
    /// blk.0.ffn_down: all zero.
    /// </summary>
    private static ImatrixData Sample()
    {
        var d = new ImatrixData(512);
        d.Entries.Add("blk.0.attn_q.weight", new ImatrixAccumulator([2, 4, 6, 8], [2], [2, -2, 0, 4]));
        d.Entries.Add("blk.1.attn_q.weight", new ImatrixAccumulator([1, 1, 1, 1], [1], [1, 1, -1, -1]));
        d.Entries.Add("blk.0.ffn_up_exps.weight", new ImatrixAccumulator([3, 6, 9, 100, 100, 100], [3, 0], null));
        d.Entries.Add("blk.1.ffn_up_exps.weight", new ImatrixAccumulator([5, 5, 5, 5], [0, 0], null));
        d.Entries.Add("blk.0.ffn_down.weight", new ImatrixAccumulator([0, 0, 0], [5], null));
        return d;
    }

    [Fact]
    public void Rows_are_llama_cpps_columns_sorted_by_kind_then_sum_descending()
    {
        var r = ImatrixStatistics.Compute(Sample());
        // The tensor whose experts all have count 0 gets no row.
        Assert.Equal(["blk.0.attn_q.weight", "blk.1.attn_q.weight", "blk.0.ffn_down.weight", "blk.0.ffn_up_exps.weight"], r.Tensors.Select(t => t.Name));

        var a = r.Tensors[0];
        Assert.Equal(("0", 0, "attn_q"), (a.Layer, a.Block, a.Kind));
        Assert.Equal(10f, a.SumSq);
        Assert.Equal((1f, 4f, 2.5f), (a.Min, a.Max, a.Mean));
        Assert.Equal(MathF.Sqrt(1.25f), a.StdDev, Tol);
        Assert.Equal(100f, a.ActivePercent);
        Assert.Equal(4, a.Elements);
        float h = -(0.1f * MathF.Log2(0.1f) + 0.2f * MathF.Log2(0.2f) + 0.3f * MathF.Log2(0.3f) + 0.4f * MathF.Log2(0.4f));
        Assert.Equal(1.8464394f, a.Entropy, Tol);
        Assert.Equal(h, a.Entropy, Tol);
        Assert.Equal(92.32197f, a.EntropyPercent, 1e-3f);
        Assert.Equal(25f, a.ZdPercent, Tol); // only 4 lies more than σ above μ
        Assert.Equal(0f, a.CosSim); // no previous block

        var b = r.Tensors[1];
        Assert.Equal(0f, b.StdDev);
        Assert.Equal(0f, b.ZdPercent); // σ = 0: no z-scores
        Assert.Equal(2f, b.Entropy, Tol);
        Assert.Equal(100f, b.EntropyPercent, Tol);
        // Raw sums [1,1,1,1] against [2,4,6,8]: 20 / (2·√120).
        Assert.Equal(20f / (2f * MathF.Sqrt(120f)), b.CosSim, Tol);

        var zero = r.Tensors[2];
        Assert.Equal((0f, 0f, 0f, 0f, 0f), (zero.SumSq, zero.Min, zero.Max, zero.Mean, zero.StdDev));
        Assert.Equal(0f, zero.ActivePercent); // every column at or below the threshold
        Assert.Equal((0f, 0f, 0f), (zero.Entropy, zero.EntropyPercent, zero.ZdPercent));

        var moe = r.Tensors[3];
        Assert.Equal(3, moe.Elements); // the unrouted expert is skipped
        Assert.Equal((6f, 1f, 3f, 2f), (moe.SumSq, moe.Min, moe.Max, moe.Mean));
        Assert.Equal(MathF.Sqrt(14f / 3f - 4f), moe.StdDev, Tol);
        Assert.Equal(100f / 3f, moe.ZdPercent, 1e-3f);
    }

    [Fact]
    public void The_active_threshold_is_configurable()
    {
        var d = new ImatrixData(512);
        d.Entries.Add("blk.0.attn_k.weight", new ImatrixAccumulator([0f, 5e-6f, 2e-5f, 1f], [1], null));
        Assert.Equal(50f, ImatrixStatistics.Compute(d).Tensors[0].ActivePercent);
        Assert.Equal(75f, ImatrixStatistics.Compute(d, activeThreshold: 1e-6f).Tensors[0].ActivePercent);
    }

    [Fact]
    public void Layers_are_element_weighted_averages()
    {
        var r = ImatrixStatistics.Compute(Sample());
        Assert.Equal([0, 1], r.Layers.Select(l => l.Layer));
        var l0 = r.Layers[0];
        Assert.Equal((4 * 10f + 3 * 6f + 3 * 0f) / 10f, l0.WeightedSumSq, Tol);
        Assert.Equal(100f * (4 * 0.25f + 3 * (1f / 3f)) / 10f, l0.WeightedZdPercent, 1e-3f);
        Assert.Equal(0f, l0.WeightedCosSim);
        var l1 = r.Layers[1];
        Assert.Equal(4f, l1.WeightedSumSq);
        Assert.Equal(20f / (2f * MathF.Sqrt(120f)), l1.WeightedCosSim, Tol);
        Assert.Null(l1.Lim);
        Assert.False(r.HasLayerImportance);
        Assert.True(r.HasInSum);
    }

    [Fact]
    public void Signed_statistics_follow_pr_14891()
    {
        var r = ImatrixStatistics.Compute(Sample());
        var a = r.Tensors.Single(t => t.Name == "blk.0.attn_q.weight").Signed!;
        Assert.True(a.FromInSum);
        Assert.Equal(10.0, a.Energy, 1e-9);
        Assert.Equal(0.5f, a.Mean, Tol);
        Assert.Equal(MathF.Sqrt(1.25f), a.StdDev, Tol);
        Assert.Equal(0f, a.Skewness, Tol);
        Assert.Equal(2.5625f / 1.5625f - 3f, a.Kurtosis, Tol);
        Assert.Equal(1.8464394f, a.Entropy, Tol);
        Assert.True(float.IsNaN(a.CosSim)); // block 0 has nothing to compare with

        var b = r.Tensors.Single(t => t.Name == "blk.1.attn_q.weight").Signed!;
        Assert.Equal(0f, b.Skewness); // E[x] = [1, 1, −1, −1] is symmetric about its mean 0
        // Against blk.0 on E[x]: C = [1, 1, −1, −1], P = [1, −1, 0, 2].
        Assert.Equal(-2f / MathF.Sqrt(24f), b.CosSim, Tol);
        Assert.Equal(MathF.Sqrt(14f), b.L2Distance, Tol);
        Assert.Equal(-2f / MathF.Sqrt(20f), b.Pearson, Tol);
        Assert.Equal(-0.5f, b.Covariance, Tol);
        Assert.Equal(1f / MathF.Sqrt(2.5f), b.Gain, Tol);

        var l1 = r.Layers.Single(l => l.Layer == 1);
        Assert.Equal(-2f / MathF.Sqrt(24f), l1.CosSim!.Value, Tol);
        Assert.Equal(MathF.Sqrt(14f), l1.L2Distance!.Value, Tol);
        Assert.Equal(-2f / MathF.Sqrt(20f), l1.Pearson!.Value, Tol);
        Assert.Equal(-0.5f, l1.Covariance!.Value, Tol);
        Assert.Equal(1f / MathF.Sqrt(2.5f), l1.Gain!.Value, Tol);

        // Without Σx the statistics are over E[x²] and say so.
        var moe = r.Tensors.Single(t => t.Name == "blk.0.ffn_up_exps.weight").Signed!;
        Assert.False(moe.FromInSum);
        Assert.Equal(2f, moe.Mean, Tol);
        Assert.Equal(3, moe.Elements);
    }

    [Fact]
    public void Layer_importance_scores_appear_per_layer_and_survive_the_file()
    {
        var d = Sample();
        d.LayerImportance = new LayerImportance(3);
        Assert.False(ImatrixStatistics.Compute(d).HasLayerImportance); // nothing recorded yet

        // Two tokens with cos 0.5 and 0.7 through layer 0; layer 2 recorded nothing.
        d.LayerImportance.Add(LayerImportance.Score.Lim, 0, 1.2, 2);
        d.LayerImportance.Add(LayerImportance.Score.Layer, 1, 1.8, 2);
        var dir = Directory.CreateTempSubdirectory("squeeze-li-").FullName;
        try
        {
            var path = Path.Combine(dir, "x.gguf");
            d.WriteGguf(path);
            var back = new ImatrixData(512);
            back.Merge(ImatrixFile.Read(path));
            var r = ImatrixStatistics.Compute(back);
            Assert.True(r.HasLayerImportance);
            Assert.Equal([0, 1, 2], r.Layers.Select(l => l.Layer));
            Assert.Equal(-0.6, r.Layers[0].Lim!.Value, 12);
            Assert.Equal(0.9, r.Layers[1].LayerSimilarity!.Value, 12);
            Assert.Null(r.Layers[2].Lim);
            Assert.Null(r.Layers[0].AttentionSimilarity);
        }
        finally { Directory.Delete(dir, true); }
    }
}
