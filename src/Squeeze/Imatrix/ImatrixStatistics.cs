using System.Text.RegularExpressions;

namespace Squeeze.Imatrix;

/// <summary>
/// llama-imatrix's <c>--show-statistics</c> columns for one weight (tools/imatrix/imatrix.cpp <c>compute_statistics</c>
/// at 815a2a591), over the per-column mean squared activations <c>a_j = Σx²_j / count</c> of every exercised matrix
/// (experts never routed to are skipped). Computed in float, in llama.cpp's order.
/// </summary>
/// <param name="Name">The weight, e.g. <c>blk.3.attn_q.weight</c>.</param>
/// <param name="Layer">The block number as text (<c>-</c> outside the blocks).</param>
/// <param name="Block">The block number, -1 outside the blocks.</param>
/// <param name="Kind">The name component before <c>weight</c>, e.g. <c>attn_q</c>.</param>
/// <param name="SumSq">Σ(Act²) = Σ_j a_j.</param>
/// <param name="Min">min a_j.</param>
/// <param name="Max">max a_j.</param>
/// <param name="Mean">μ = Σ a_j / N.</param>
/// <param name="StdDev">σ = √max(0, Σa²/N − μ²).</param>
/// <param name="Active">1 − #{|a_j| ≤ threshold} / N (printed as a percentage).</param>
/// <param name="Elements">N, the values averaged.</param>
/// <param name="Entropy">−Σ p log₂ p with p_j = a_j / Σa (0 when Σa ≤ 0).</param>
/// <param name="EntropyPercent">E (norm) = 100·Entropy / log₂ N.</param>
/// <param name="Zd">ZD = #{(a_j − μ)/σ > 1} / N (0 when σ = 0; printed as a percentage).</param>
/// <param name="CosSim">Cosine similarity of the raw Σx² with the same weight of the previous block (0 when there is none).</param>
/// <param name="Signed">PR #14891's statistics, computed from Σx when the entry has it (see <see cref="SignedStatistics"/>).</param>
public sealed record TensorStatistics(string Name, string Layer, int Block, string Kind, float SumSq, float Min, float Max, float Mean, float StdDev,
    float Active, int Elements, float Entropy, float EntropyPercent, float Zd, float CosSim, SignedStatistics? Signed)
{
    public float ActivePercent => Active * 100f;
    public float ZdPercent => 100f * Zd;
}

/// <summary>
/// The activation statistics of eaddario's PR #14891 (<c>compute_vector_statistics</c> and <c>compute_tensor_statistics</c>,
/// branch <c>imatrix</c>), in double: over the per-column mean activation E[x] = Σx / count when the entry has Σx, else over
/// E[x²] (legacy); energy and entropy always over E[x²]. Comparisons are with the nearest earlier block holding the same
/// weight, on E[x] when both sides have it, else on E[x²]. NaN where undefined.
/// </summary>
/// <param name="FromInSum">Whether the entry had Σx (else the values are E[x²] statistics).</param>
/// <param name="Energy">Σ E[x²] over the valid columns.</param>
/// <param name="Mean">Mean of E[x] (E[x²] without Σx) over the columns.</param>
/// <param name="StdDev">Population standard deviation of the same.</param>
/// <param name="Skewness">m3 / σ³.</param>
/// <param name="Kurtosis">m4 / σ⁴ − 3 (excess).</param>
/// <param name="Entropy">−Σ p log₂ p of the energy shares p_j = E[x_j²] / Σ E[x²].</param>
/// <param name="Elements">Valid columns N.</param>
/// <param name="CosSim">Cosine similarity with the previous block's vector (clamped to [−1, 1]).</param>
/// <param name="Pearson">Pearson correlation with the previous block's vector.</param>
/// <param name="Covariance">Population covariance with the previous block's vector.</param>
/// <param name="HNormPercent">100·Entropy / log₂ N.</param>
/// <param name="Gain">RMS ratio √(energy/N) / √(energy_prev/N_prev).</param>
/// <param name="L2Distance">‖C − P‖₂ of the compared vectors.</param>
public sealed record SignedStatistics(bool FromInSum, double Energy, float Mean, float StdDev, float Skewness, float Kurtosis, float Entropy, float HNormPercent,
    int Elements, float Gain, float L2Distance, float CosSim, float Pearson, float Covariance)
{
    internal double DotProd, Norm1Sq, Norm2Sq, CovSum, VarCSum, VarPSum, L2DistSq, EnergyPrev;
    internal long Features, ElementsPrev;
}

/// <summary>One block's summary: llama.cpp's element-weighted averages, PR #14891's pooled comparisons, Squeeze's layer importance.</summary>
/// <param name="Layer">The block.</param>
/// <param name="WeightedSumSq">μΣ(Act²) = Σ N_t·Σ(Act²)_t / Σ N_t.</param>
/// <param name="WeightedZdPercent">μZD (percent).</param>
/// <param name="WeightedCosSim">μCosSim.</param>
/// <param name="CosSim">PR #14891's pooled cosine similarity with the previous block (Σdot / √(Σ|C|²·Σ|P|²)).</param>
/// <param name="L2Distance">Pooled L2 distance √Σ l2².</param>
/// <param name="Pearson">Pooled Pearson correlation Σcov / √(Σvar_c·Σvar_p).</param>
/// <param name="Covariance">Pooled covariance Σcov / Σ N.</param>
/// <param name="Gain">RMS gain over the matched weights.</param>
/// <param name="Lim">LIM (−mean cos of hidden state in/out), null when not recorded.</param>
/// <param name="LayerSimilarity">ik_llama.cpp's ⟨cos⟩ between this layer's and the next layer's inputs, null when not recorded.</param>
/// <param name="AttentionSimilarity">ik_llama.cpp's attention ⟨cos⟩ (attention input vs FFN input).</param>
/// <param name="FfnSimilarity">ik_llama.cpp's FFN ⟨cos⟩ (FFN input vs next layer's input).</param>
public sealed record LayerStatistics(int Layer, float WeightedSumSq, float WeightedZdPercent, float WeightedCosSim,
    float? CosSim, float? L2Distance, float? Pearson, float? Covariance, float? Gain,
    double? Lim, double? LayerSimilarity, double? AttentionSimilarity, double? FfnSimilarity);

/// <summary>The statistics of a whole imatrix.</summary>
public sealed record ImatrixStatisticsReport(IReadOnlyList<TensorStatistics> Tensors, IReadOnlyList<LayerStatistics> Layers, bool HasInSum, bool HasLayerImportance);

/// <summary>Computes <see cref="ImatrixStatisticsReport"/>s.</summary>
public static partial class ImatrixStatistics
{
    /// <summary>The default % Active threshold of llama.cpp's merged code.</summary>
    public const float DefaultActiveThreshold = 1e-5f;

    /// <summary>Every statistic of <paramref name="data"/>, rows sorted as llama.cpp sorts them (kind, then Σ(Act²) descending).</summary>
    public static ImatrixStatisticsReport Compute(ImatrixData data, float activeThreshold = DefaultActiveThreshold)
    {
        var rows = new List<TensorStatistics>();
        var signed = new Dictionary<string, SignedStatistics>(StringComparer.Ordinal);
        foreach (var (name, e) in data.Entries)
        {
            var s = Compute(name, e, activeThreshold);
            if (s is not null) rows.Add(s);
            var v = Vector(e);
            if (v is not null) signed[name] = v;
        }
        // CosSim with blk.(L-1) of the same name, on raw sums (compute_cossim).
        var byName = rows.ToDictionary(r => r.Name, StringComparer.Ordinal);
        for (int i = 0; i < rows.Count; i++)
        {
            var m = BlockPattern().Match(rows[i].Name);
            float cos = 0;
            if (m.Success && int.TryParse(m.Groups[1].ValueSpan, out int blk))
            {
                var prevName = string.Concat(rows[i].Name.AsSpan(0, m.Groups[1].Index), (blk - 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    rows[i].Name.AsSpan(m.Groups[1].Index + m.Groups[1].Length));
                if (byName.ContainsKey(prevName)) cos = RawCosine(data.Entries[rows[i].Name].InSum2, data.Entries[prevName].InSum2);
            }
            rows[i] = rows[i] with { CosSim = cos };
        }
        CompareWithPrevious(signed, data);
        for (int i = 0; i < rows.Count; i++)
            if (signed.TryGetValue(rows[i].Name, out var s)) rows[i] = rows[i] with { Signed = s };

        rows.Sort((a, b) =>
        {
            int c = string.CompareOrdinal(a.Kind, b.Kind);
            if (c != 0) return c;
            c = b.SumSq.CompareTo(a.SumSq);
            return c != 0 ? c : string.CompareOrdinal(a.Name, b.Name);
        });

        // Element-weighted averages per block, accumulated in float in the sorted order, as show_statistics does.
        var weighted = new SortedDictionary<int, (float Bias, float Zd, float Cos, int N)>();
        foreach (var t in rows)
        {
            weighted.TryGetValue(t.Block, out var w);
            w.Bias += t.Elements * t.SumSq;
            w.Zd += t.Elements * t.Zd;
            w.Cos += t.Elements * t.CosSim;
            w.N += t.Elements;
            weighted[t.Block] = w;
        }
        var pooled = PoolLayers(signed.Values.Zip(signed.Keys));
        var li = data.LayerImportance is { IsEmpty: false } imp ? imp : null;
        var layerIds = new SortedSet<int>(weighted.Keys.Where(k => k >= 0));
        if (li is not null) for (int l = 0; l < li.Layers; l++) layerIds.Add(l);
        var layers = new List<LayerStatistics>();
        foreach (int l in layerIds)
        {
            float bias = 0, zd = 0, cos = 0;
            if (weighted.TryGetValue(l, out var w) && w.N > 0) { bias = w.Bias / w.N; zd = 100f * (w.Zd / w.N); cos = w.Cos / w.N; }
            pooled.TryGetValue(l, out var p);
            layers.Add(new LayerStatistics(l, bias, zd, cos, p?.Cos, p?.L2, p?.Pearson, p?.Cov, p?.Gain,
                Nullable(li?.Lim(l)), Nullable(li?.LayerSimilarity(l)), Nullable(li?.AttentionSimilarity(l)), Nullable(li?.FfnSimilarity(l))));
        }
        return new ImatrixStatisticsReport(rows, layers, data.Entries.Values.Any(e => e.InSum is not null), li is not null);
    }

    private static double? Nullable(double? v) => v is double d && !double.IsNaN(d) ? d : null;

    [GeneratedRegex(@"blk\.(\d+)\.")]
    private static partial Regex BlockPattern();

    /// <summary>Splits a weight name as llama.cpp's <c>process_tensor_name</c>: the component after <c>blk</c> and the one before <c>weight</c>.</summary>
    public static (string Layer, string Kind) SplitName(string name)
    {
        var parts = name.Split('.');
        string layer = "", kind = "";
        for (int i = 0; i < parts.Length; i++)
            if (parts[i] == "blk" && i + 1 < parts.Length) { layer = parts[i + 1]; break; }
        for (int i = 0; i < parts.Length; i++)
            if (parts[i] == "weight" && i > 0) { kind = parts[i - 1]; break; }
        if (kind.Length == 0) kind = name;
        if (layer.Length == 0) layer = "-";
        return (layer, kind);
    }

    /// <summary>std::stoi of the layer text: leading digits (after an optional sign), -1 when there are none.</summary>
    private static int Block(string layer)
    {
        int i = 0, sign = 1;
        while (i < layer.Length && char.IsWhiteSpace(layer[i])) i++;
        if (i < layer.Length && (layer[i] == '-' || layer[i] == '+')) { sign = layer[i] == '-' ? -1 : 1; i++; }
        int start = i;
        long v = 0;
        while (i < layer.Length && layer[i] is >= '0' and <= '9' && v < int.MaxValue) v = v * 10 + (layer[i++] - '0');
        if (i == start || v > int.MaxValue) return -1;
        return (int)(sign * v);
    }

    /// <summary>One weight's llama.cpp statistics; null when every matrix has count 0 (llama.cpp skips it).</summary>
    public static TensorStatistics? Compute(string name, ImatrixAccumulator e, float activeThreshold = DefaultActiveThreshold)
    {
        int nMat = e.Counts.Length, row = e.Columns;
        var act = new List<float>(e.InSum2.Length);
        for (int i = 0; i < nMat; i++)
        {
            if (e.Counts[i] == 0) continue;
            float c = e.Counts[i];
            for (int j = 0; j < row; j++) act.Add(e.InSum2[i * row + j] / c);
        }
        if (act.Count == 0) return null;
        float total = 0f, sq = 0f, max = act[0], min = act[0];
        foreach (var a in act) { total += a; sq += a * a; if (a > max) max = a; if (a < min) min = a; }
        float mean = total / act.Count;
        float variance = sq / act.Count - mean * mean;
        float dev = MathF.Sqrt(MathF.Max(0f, variance));
        int inactive = act.Count(a => MathF.Abs(a) <= activeThreshold);
        float active = 1 - (float)inactive / act.Count;
        float entropy = 0;
        if (total > 0)
            foreach (var a in act)
            {
                float p = a / total;
                if (p > 0) entropy -= p * MathF.Log2(p);
            }
        int z = 0;
        if (dev > 0f)
            foreach (var a in act)
                if ((a - mean) / dev > 1) z++;
        var (layer, kind) = SplitName(name);
        int n = act.Count;
        float eNorm = n > 0 ? 100f * (entropy / MathF.Log2(n)) : 0f;
        return new TensorStatistics(name, layer, Block(layer), kind, total, min, max, mean, dev, active, n, entropy, eNorm,
            (float)z / n, 0f, null);
    }

    /// <summary>cos of two raw Σx² vectors in float (llama.cpp's compute_cossim); NaN when a vector is all zero.</summary>
    private static float RawCosine(float[] a, float[] b)
    {
        if (a.Length != b.Length) return 0f;
        float dp = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) dp += a[i] * b[i];
        for (int i = 0; i < a.Length; i++) na += a[i] * a[i];
        for (int i = 0; i < b.Length; i++) nb += b[i] * b[i];
        return dp / (MathF.Sqrt(na) * MathF.Sqrt(nb));
    }

    /// <summary>PR #14891's compute_vector_statistics; null when no column is valid.</summary>
    private static SignedStatistics? Vector(ImatrixAccumulator e)
    {
        bool legacy = e.InSum is null;
        int nMat = e.Counts.Length, row = e.Columns;
        double sum = 0, mean = 0, energy = 0;
        long valid = 0;
        for (int i = 0; i < nMat; i++)
        {
            float c = e.Counts[i];
            if (c <= 0f) continue;
            double inv = 1.0 / c;
            for (int j = 0; j < row; j++)
            {
                double vVal = e.InSum2[i * row + j] * inv;
                double v = legacy ? vVal : e.InSum![i * row + j] * inv;
                if (!double.IsFinite(v) || !double.IsFinite(vVal)) continue;
                sum += vVal;
                valid++;
                mean += (v - mean) / valid;
                if (vVal > 0) energy += vVal;
            }
        }
        if (valid == 0) return null;
        double s2 = 0, s3 = 0, s4 = 0, entropy = 0;
        double invEnergy = energy > 0 ? 1.0 / energy : 0;
        for (int i = 0; i < nMat; i++)
        {
            float c = e.Counts[i];
            if (c <= 0f) continue;
            double inv = 1.0 / c;
            for (int j = 0; j < row; j++)
            {
                double vVal = e.InSum2[i * row + j] * inv;
                double v = legacy ? vVal : e.InSum![i * row + j] * inv;
                if (!double.IsFinite(v) || !double.IsFinite(vVal)) continue;
                double d = v - mean;
                s2 += d * d;
                s3 += d * d * d;
                s4 += d * d * d * d;
                if (invEnergy > 0)
                {
                    double p = Math.Max(0, vVal) * invEnergy;
                    if (p > 1e-10) entropy -= p * Math.Log(p) / Math.Log(2.0);
                }
            }
        }
        double variance = valid > 1 ? s2 / valid : 0;
        float dev = MathF.Sqrt((float)Math.Max(variance, 0));
        float skew = 0, kurt = 0;
        if (dev > 1e-10f)
        {
            double m2 = s2 / valid;
            skew = (float)(s3 / valid / (m2 * Math.Sqrt(m2)));
            kurt = (float)(s4 / valid / (m2 * m2) - 3.0);
        }
        float hNorm = valid > 1 ? (float)(100.0 * entropy / Math.Log2(valid)) : 0f;
        return new SignedStatistics(!legacy, sum, (float)mean, dev, skew, kurt, (float)entropy, hNorm, (int)valid,
            float.NaN, float.NaN, float.NaN, float.NaN, float.NaN);
    }

    /// <summary>Per-column means (Σx or Σx² over the count) with NaN for unexercised matrices; null when none is exercised.</summary>
    private static double[]? Averages(ImatrixAccumulator e, bool useInSum)
    {
        var src = useInSum ? e.InSum! : e.InSum2;
        int nMat = e.Counts.Length, row = e.Columns;
        var v = new double[src.Length];
        Array.Fill(v, double.NaN);
        bool any = false;
        for (int m = 0; m < nMat; m++)
        {
            float c = e.Counts[m];
            if (c <= 0f) continue;
            any = true;
            float scale = 1f / c;
            for (int j = 0; j < row; j++) v[m * row + j] = src[m * row + j] * scale;
        }
        return any ? v : null;
    }

    /// <summary>PR #14891's compute_tensor_statistics: each weight against the nearest earlier block holding it.</summary>
    private static void CompareWithPrevious(Dictionary<string, SignedStatistics> stats, ImatrixData data)
    {
        foreach (var name in stats.Keys.ToList())
        {
            var ts = stats[name];
            var (layerText, _) = SplitName(name);
            int blk = Block(layerText);
            if (blk <= 0) continue;
            int pos = name.IndexOf("blk." + layerText, StringComparison.Ordinal);
            if (pos < 0) continue;
            string? prevName = null;
            for (int prev = blk - 1; prev >= 0 && prevName is null; prev--)
            {
                var candidate = string.Concat(name.AsSpan(0, pos), "blk.", prev.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    name.AsSpan(pos + 4 + layerText.Length));
                if (stats.ContainsKey(candidate)) prevName = candidate;
            }
            if (prevName is null) continue;
            var prevTs = stats[prevName];
            bool useInSum = ts.FromInSum && prevTs.FromInSum;
            var c = Averages(data.Entries[name], useInSum);
            var p = Averages(data.Entries[prevName], useInSum);
            if (c is null || p is null || c.Length != p.Length) continue;
            double sc = 0, sp = 0;
            long valid = 0;
            for (int i = 0; i < c.Length; i++)
                if (double.IsFinite(c[i]) && double.IsFinite(p[i])) { sc += c[i]; sp += p[i]; valid++; }
            if (valid == 0) continue;
            double mc = sc / valid, mp = sp / valid;
            double dot = 0, n1 = 0, n2 = 0, l2 = 0, cov = 0, vc = 0, vp = 0;
            for (int i = 0; i < c.Length; i++)
            {
                if (!double.IsFinite(c[i]) || !double.IsFinite(p[i])) continue;
                dot += c[i] * p[i]; n1 += c[i] * c[i]; n2 += p[i] * p[i];
                double d = c[i] - p[i];
                l2 += d * d;
                double dc = c[i] - mc, dp = p[i] - mp;
                cov += dc * dp; vc += dc * dc; vp += dp * dp;
            }
            float cos = n1 > 0 && n2 > 0 ? Math.Clamp((float)(dot / (Math.Sqrt(n1) * Math.Sqrt(n2))), -1f, 1f) : n1 == 0 && n2 == 0 ? float.NaN : 0f;
            float pearson = vc > 0 && vp > 0 ? Math.Clamp((float)(cov / (Math.Sqrt(vc) * Math.Sqrt(vp))), -1f, 1f) : vc == 0 && vp == 0 ? float.NaN : 0f;
            float gain;
            double energyPrev = 0;
            long elementsPrev = 0;
            if (prevTs.Energy > 1e-10f)
            {
                gain = (float)(Math.Sqrt(ts.Energy / ts.Elements) / Math.Sqrt(prevTs.Energy / prevTs.Elements));
                energyPrev = prevTs.Energy;
                elementsPrev = prevTs.Elements;
            }
            else gain = ts.Energy <= 1e-10f ? 1f : float.NaN;
            stats[name] = ts with
            {
                Gain = gain, L2Distance = (float)Math.Sqrt(l2), CosSim = cos, Pearson = pearson,
                Covariance = valid > 1 ? (float)(cov / valid) : float.NaN,
                DotProd = dot, Norm1Sq = n1, Norm2Sq = n2, CovSum = cov, VarCSum = vc, VarPSum = vp, L2DistSq = l2,
                Features = valid, EnergyPrev = energyPrev, ElementsPrev = elementsPrev,
            };
        }
    }

    private sealed record Pooled(float Cos, float L2, float Pearson, float Cov, float Gain);

    /// <summary>PR #14891's compute_layer_statistics: the comparisons pooled over each block's weights.</summary>
    private static Dictionary<int, Pooled> PoolLayers(IEnumerable<(SignedStatistics Stats, string Name)> stats)
    {
        var agg = new SortedDictionary<int, (double Dot, double N1, double N2, double L2, double Cov, double Vc, double Vp, double Ec, double Ep, long Nc, long Np, long Features, int Tensors)>();
        foreach (var (ts, name) in stats)
        {
            int blk = Block(SplitName(name).Layer);
            if (blk <= 0) continue;
            if (ts.Norm1Sq == 0 && ts.Norm2Sq == 0 && ts.L2DistSq == 0) continue;
            agg.TryGetValue(blk, out var a);
            a.Dot += ts.DotProd; a.N1 += ts.Norm1Sq; a.N2 += ts.Norm2Sq; a.L2 += ts.L2DistSq;
            a.Cov += ts.CovSum; a.Vc += ts.VarCSum; a.Vp += ts.VarPSum; a.Tensors++;
            if (ts.Features > 0) a.Features += ts.Features;
            if (ts.ElementsPrev > 0) { a.Ec += ts.Energy; a.Ep += ts.EnergyPrev; a.Nc += ts.Elements; a.Np += ts.ElementsPrev; }
            agg[blk] = a;
        }
        var result = new Dictionary<int, Pooled>();
        foreach (var (layer, a) in agg)
        {
            float cos = a.N1 > 0 && a.N2 > 0 ? Math.Clamp((float)(a.Dot / (Math.Sqrt(a.N1) * Math.Sqrt(a.N2))), -1f, 1f) : a.N1 == 0 && a.N2 == 0 ? float.NaN : 0f;
            float gain = a.Nc > 0 && a.Np > 0 && a.Ep > 0 ? (float)(Math.Sqrt(a.Ec / a.Nc) / Math.Sqrt(a.Ep / a.Np)) : float.NaN;
            float cov = a.Features > 0 ? (float)(a.Cov / a.Features) : float.NaN;
            float pearson = a.Vc > 0 && a.Vp > 0 ? Math.Clamp((float)(a.Cov / (Math.Sqrt(a.Vc) * Math.Sqrt(a.Vp))), -1f, 1f) : a.Vc == 0 && a.Vp == 0 ? float.NaN : 0f;
            result[layer] = new Pooled(cos, (float)Math.Sqrt(a.L2), pearson, cov, gain);
        }
        return result;
    }
}
