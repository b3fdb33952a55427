using System.Diagnostics;
using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Quantization;
using Squeeze.Quantization.Planning;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Quantization;

public class KnapsackTests
{
    private static List<IReadOnlyList<KnapsackOption>> Instance(Random rng, int items, int options)
    {
        var list = new List<IReadOnlyList<KnapsackOption>>();
        for (int i = 0; i < items; i++)
        {
            // Roughly convex error curves with noise, so that hulls, dominated and non-hull options all occur.
            double scale = Math.Exp(rng.NextDouble() * 4 - 2);
            var opts = new List<KnapsackOption>();
            for (int k = 0; k < options; k++)
            {
                long bytes = 10 + rng.Next(200);
                opts.Add(new KnapsackOption(bytes, scale * Math.Exp(-bytes / 40.0) * (0.6 + 0.8 * rng.NextDouble())));
            }
            list.Add(opts);
        }
        return list;
    }

    private static (double Error, long Bytes) BruteForce(IReadOnlyList<IReadOnlyList<KnapsackOption>> items, long budget)
    {
        double best = double.PositiveInfinity;
        long bestBytes = 0;
        var idx = new int[items.Count];
        while (true)
        {
            long b = 0; double e = 0;
            for (int i = 0; i < items.Count; i++) { b += items[i][idx[i]].Bytes; e += items[i][idx[i]].Error; }
            if (b <= budget && e < best) { best = e; bestBytes = b; }
            int j = 0;
            while (j < items.Count && ++idx[j] == items[j].Count) { idx[j] = 0; j++; }
            if (j == items.Count) break;
        }
        return (best, bestBytes);
    }

    [Fact]
    public void Exact_solver_equals_brute_force_and_greedy_is_close()
    {
        var rng = new Random(12345);
        int greedyOptimal = 0, cases = 300;
        for (int c = 0; c < cases; c++)
        {
            var items = Instance(rng, 2 + rng.Next(5), 1 + rng.Next(5));
            long min = items.Sum(i => i.Min(o => o.Bytes)), max = items.Sum(i => i.Max(o => o.Bytes));
            long budget = min + (long)(rng.NextDouble() * (max - min));
            var (best, _) = BruteForce(items, budget);

            var exact = MultipleChoiceKnapsack.Exact(items, budget)!;
            Assert.True(exact.Exact);
            Assert.Equal(best, exact.Error, 1e-9);
            Assert.True(exact.Bytes <= budget);
            Assert.Equal(exact.Bytes, exact.Choice.Select((k, i) => items[i][k].Bytes).Sum());

            var greedy = MultipleChoiceKnapsack.Greedy(items, budget);
            Assert.True(greedy.Bytes <= budget, $"case {c}: greedy over budget");
            Assert.True(greedy.Error >= best - 1e-12);
            if (greedy.Error <= best + 1e-12) greedyOptimal++;

            var solved = MultipleChoiceKnapsack.Solve(items, budget);
            Assert.Equal(best, solved.Error, 1e-9);
        }
        // The Lagrangian + exchange heuristic alone finds the optimum on most small instances.
        Assert.True(greedyOptimal >= cases * 8 / 10, $"greedy optimal on {greedyOptimal}/{cases}");
    }

    [Fact]
    public void Greedy_hits_the_budget_to_within_one_step()
    {
        var rng = new Random(7);
        for (int c = 0; c < 50; c++)
        {
            var items = Instance(rng, 40, 12);
            long min = items.Sum(i => i.Min(o => o.Bytes)), max = items.Sum(i => i.Max(o => o.Bytes));
            long budget = min + (long)(rng.NextDouble() * (max - min));
            var s = MultipleChoiceKnapsack.Greedy(items, budget);
            Assert.True(s.Bytes <= budget);
            long slack = budget - s.Bytes;
            // No single item can move to an option with less error that still fits.
            for (int i = 0; i < items.Count; i++)
            {
                var cur = items[i][s.Choice[i]];
                foreach (var o in items[i])
                    Assert.False(o.Error < cur.Error - 1e-12 && o.Bytes - cur.Bytes <= slack, $"case {c}: item {i} could still improve within the slack of {slack}");
            }
        }
    }

    [Fact]
    public void Infeasible_budget_is_a_clear_error()
    {
        var items = new List<IReadOnlyList<KnapsackOption>> { new List<KnapsackOption> { new(10, 1), new(20, 0.5) } };
        var e = Assert.Throws<InvalidInputException>(() => MultipleChoiceKnapsack.Solve(items, 9));
        Assert.Contains("smallest possible", e.Message);
    }

    [Fact]
    public void Lower_hull_drops_dominated_and_concave_points()
    {
        KnapsackOption[] o = [new(10, 10), new(20, 9), new(30, 2), new(25, 12), new(40, 1.5), new(50, 0.2)];
        var hull = MultipleChoiceKnapsack.LowerHull(o);
        // (20,9) lies above the segment (10,10)-(30,2); (25,12) is dominated; (40,1.5) lies above (30,2)-(50,0.2).
        Assert.Equal([0, 2, 5], hull);
    }
}

public class ErrorModelTests
{
    [Fact]
    public void Prediction_interpolates_probes_in_log_log_space_and_extrapolates_with_clamped_slope()
    {
        var p = new TensorErrorProfile("t", [256, 256], GgmlType.F32, [],
            [new SensitivityProbe(GgmlType.Q2_K, 1.0, 1e-2), new SensitivityProbe(GgmlType.Q4_K, 0.01, 1e-4)]);
        Assert.Equal(1e-2, p.Predict(1.0), 1e-12);
        Assert.Equal(1e-4, p.Predict(0.01), 1e-12);
        Assert.Equal(1e-3, p.Predict(0.1), 1e-9); // slope 1 between the probes
        Assert.Equal(0, p.Predict(0));
        // Far above: slope clamped to at most MaxSlope.
        var steep = new TensorErrorProfile("t", [256, 256], GgmlType.F32, [],
            [new SensitivityProbe(GgmlType.Q2_K, 1.0, 1.0), new SensitivityProbe(GgmlType.Q4_K, 0.1, 1e-4)]);
        Assert.Equal(1e-4 * Math.Pow(0.1, TensorErrorProfile.MaxSlope), steep.Predict(0.01), 1e-12);
        // The floor (activation rounding, measured at Q8_0) is subtracted before the fit and added back for quantized types only.
        var floored = new TensorErrorProfile("t", [256, 256], GgmlType.F32,
            [new CandidateMeasure(GgmlType.Q4_K, 0, 0.1), new CandidateMeasure(GgmlType.F16, 0, 0.1)],
            [new SensitivityProbe(GgmlType.Q2_K, 1.0, 1e-2 + 1e-5), new SensitivityProbe(GgmlType.Q4_K, 0.01, 1e-4 + 1e-5)], floor: 1e-5);
        Assert.Equal(1e-3, floored.Predict(0.1), 1e-9);
        Assert.Equal(1e-3 + 1e-5, floored.Predict(floored.Candidates[0]), 1e-9);
        Assert.Equal(1e-3, floored.Predict(floored.Candidates[1]), 1e-9);
        // One probe: proportional.
        var one = new TensorErrorProfile("t", [256], GgmlType.F32, [], [new SensitivityProbe(GgmlType.Q4_K, 2, 4)]);
        Assert.Equal(1, one.Predict(0.5), 1e-12);
    }

    [Fact]
    public void A_candidate_probed_itself_is_predicted_by_its_measurement()
    {
        // Q2_K and Q4_K probed; IQ4_XS probed too (as with MeasureOptions.ProbeAll): its own KLD, not the curve's value.
        var cands = new CandidateMeasure[] { new(GgmlType.Q2_K, 100, 1.0), new(GgmlType.IQ4_XS, 200, 0.1), new(GgmlType.Q4_K, 220, 0.01), new(GgmlType.Q5_K, 260, 0.001) };
        var p = new TensorErrorProfile("t", [256, 256], GgmlType.F32, cands,
            [new SensitivityProbe(GgmlType.Q2_K, 1.0, 1e-2), new SensitivityProbe(GgmlType.IQ4_XS, 0.1, 5e-4), new SensitivityProbe(GgmlType.Q4_K, 0.01, 1e-4)]);
        Assert.Equal(1e-2, p.Predict(cands[0]), 1e-15);
        Assert.Equal(5e-4, p.Predict(cands[1]), 1e-15);
        Assert.Equal(1e-4, p.Predict(cands[2]), 1e-15);
        // Not probed: the curve through the probes, extrapolated from the nearest one.
        Assert.Equal(p.Predict(0.001), p.Predict(cands[3]), 1e-15);
        Assert.True(p.Predict(cands[3]) < 1e-4);
    }

    [Fact]
    public void Table_round_trips_and_rejects_another_key_or_damage()
    {
        var dir = Directory.CreateTempSubdirectory("squeeze-plan-cache-");
        try
        {
            var t = new ErrorTable("abc", [new TensorErrorProfile("blk.0.attn_q.weight", [256, 128], GgmlType.F16,
                [new CandidateMeasure(GgmlType.Q4_K, 18432, 0.125), new CandidateMeasure(GgmlType.Q8_0, 34816, 1e-5)],
                [new SensitivityProbe(GgmlType.Q4_K, 0.125, 3.5e-4)])], true, 512, 0, new Dictionary<GgmlType, double> { [GgmlType.Q8_0] = 1.5 });
            string path = Path.Combine(dir.FullName, "x.errors");
            t.Save(path);
            var back = ErrorTable.TryLoad(path, "abc")!;
            Assert.True(back.FromCache);
            Assert.Equal(512, back.CalibrationTokens);
            var p = Assert.Single(back.Tensors);
            Assert.Equal([256L, 128L], p.Shape);
            Assert.Equal(GgmlType.F16, p.SourceType);
            Assert.Equal(t.Tensors[0].Candidates, p.Candidates);
            Assert.Equal(t.Tensors[0].Probes, p.Probes);
            Assert.Equal(1.5, back.TypeFactors[GgmlType.Q8_0]);
            // The factor applies to its type's predictions only.
            Assert.Equal(1.5 * p.Predict(1e-5), p.Predict(p.Candidates[1]), 1e-15);
            Assert.Equal(p.Predict(0.125), p.Predict(p.Candidates[0]), 1e-15);
            Assert.Null(ErrorTable.TryLoad(path, "other"));
            File.WriteAllText(path, File.ReadAllText(path).Replace("end\n", ""));
            Assert.Null(ErrorTable.TryLoad(path, "abc"));
            File.WriteAllText(path, "squeeze-plan-errors 1\nkey abc\ncalibrated 1 x 0\nend\n");
            Assert.Null(ErrorTable.TryLoad(path, "abc"));
        }
        finally { dir.Delete(true); }
    }

    [Theory]
    [InlineData("1000", 1000L)]
    [InlineData("2K", 2048L)]
    [InlineData("1.5M", 1572864L)]
    [InlineData("3GiB", 3221225472L)]
    [InlineData("512mb", 536870912L)]
    public void Sizes_parse(string text, long bytes) => Assert.Equal(bytes, PlanTarget.ParseSize(text).FileBytes);

    [Theory]
    [InlineData("12Q")]
    [InlineData("-5")]
    [InlineData("")]
    public void Bad_sizes_are_rejected(string text) => Assert.Throws<InvalidInputException>(() => PlanTarget.ParseSize(text));

    [Theory]
    [InlineData("attn_v")]
    [InlineData("attn_v=q9_K")]
    [InlineData("([=q4_K")]
    public void Bad_pins_are_rejected(string text) => Assert.Throws<InvalidInputException>(() => TensorPin.Parse(text));
}

/// <summary>The whole planner on a small synthetic model (no shared data): measure, allocate, cache.</summary>
public sealed class PlannerSyntheticTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("squeeze-planner-");

    public void Dispose() => _dir.Delete(true);

    internal static (string Model, ImportanceMatrix Imatrix, string ImatrixPath) Setup(string dir)
    {
        string model = Path.Combine(dir, "llama.gguf");
        SyntheticModels.Write(model, SyntheticModels.Llama, seed: 3);
        var rng = new Random(5);
        var entries = new List<ImatrixFiles.LegacyEntry>();
        using (var f = GgufFile.Open(model))
            foreach (var t in f.Tensors.Where(t => QuantizableTensors.Check(t).Allowed && t.Name != "token_embd.weight"))
                entries.Add(new(t.Name, 4, Enumerable.Range(0, (int)t.Shape[0]).Select(i => (float)(4 * Math.Exp(2 * rng.NextDouble() - 1) * (i % 29 == 0 ? 20 : 1))).ToArray()));
        string path = Path.Combine(dir, "llama.imatrix.dat");
        File.WriteAllBytes(path, ImatrixFiles.LegacyBytes(entries, 4, "synthetic.txt"));
        return (model, ImportanceMatrix.Load(path), path);
    }

    internal static MeasureOptions Options(ImportanceMatrix im, string? cache) => new()
    {
        Imatrix = im,
        Threads = 2,
        SampleElements = 8192,
        Candidates = [GgmlType.IQ2_XS, GgmlType.IQ3_S, GgmlType.IQ4_XS, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.F16],
        CalibrationChunks = [Enumerable.Range(0, 24).Select(i => (i * 37 + 1) % 320).ToArray()],
        CacheDirectory = cache,
        TypeFactorTensors = 3,
        ProbeFloor = true,
        ProbeAll = false,
    };

    [Fact]
    public void Plans_fit_the_target_and_replanning_from_the_cache_is_fast()
    {
        var (model, im, _) = Setup(_dir.FullName);
        string cache = Path.Combine(_dir.FullName, "cache");
        using var f = GgufFile.Open(model);
        var (a, table) = BitPlanner.Plan(f, PlanTarget.Bpw(4.0), Options(im, cache), cancellation: TestContext.Current.CancellationToken);
        Assert.False(table.FromCache);
        Assert.True(table.Calibrated);
        Assert.All(table.Tensors, t => Assert.NotEmpty(t.Probes));
        Assert.All(table.Tensors, t => Assert.All(t.Probes, p => Assert.True(p.Kld > 0, $"{t.Name}: a probe measured no divergence")));
        Assert.True(table.BaseKldFloor < 1e-6, $"the harness itself diverges: {table.BaseKldFloor}");
        // Type factors were measured for the types probed on the reference tensors, and they are finite and positive.
        Assert.NotEmpty(table.TypeFactors);
        Assert.All(table.TypeFactors.Values, f => Assert.InRange(f, 0.25, 4));
        long budget = (long)Math.Floor(4.0 * f.Tensors.Sum(t => t.ElementCount) / 8);
        Assert.True(a.TensorBytes <= budget);
        Assert.Equal(a.TensorBytes, a.Plan.Tensors.Sum(t => t.OutputBytes));
        // Within one step: no planned tensor can move to a better measured candidate within the slack.
        long slack = budget - a.TensorBytes;
        foreach (var t in a.Tensors.Where(t => t.Status == "planned"))
        {
            var p = table.Tensors.Single(x => x.Name == t.Name);
            foreach (var c in p.Candidates)
                Assert.False(p.Predict(c) < t.PredictedKld - 1e-15 && c.Bytes - t.Bytes <= slack, $"{t.Name} could take {c.Type.Name()}");
        }
        // i-quants only where the imatrix has the tensor: token_embd has no entry, so no IQ2_XS there.
        var embd = table.Tensors.Single(t => t.Name == "token_embd.weight");
        Assert.DoesNotContain(embd.Candidates, c => c.Type == GgmlType.IQ2_XS);
        Assert.Contains(table.Tensors.Single(t => t.Name == "blk.0.ffn_up.weight").Candidates, c => c.Type == GgmlType.IQ2_XS);

        // More bits, less predicted error.
        var clock = Stopwatch.StartNew();
        var (b, cached) = BitPlanner.Plan(f, PlanTarget.Bpw(6.0), Options(im, cache), cancellation: TestContext.Current.CancellationToken);
        Assert.True(cached.FromCache);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"re-planning took {clock.Elapsed}");
        Assert.True(b.PredictedKld < a.PredictedKld);
        Assert.True(b.TensorBytes > a.TensorBytes);

        // Tensor-type file: one anchored rule per quantizable tensor, in the plan's types.
        var lines = a.TensorTypeFile().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(a.Tensors.Count(t => t.Status != "kept"), lines.Length);
        Assert.Contains(@"^blk\.0\.attn_q\.weight$=" + a.Tensors.Single(t => t.Name == "blk.0.attn_q.weight").Type.Name(), lines);
    }

    [Fact]
    public void Probing_every_candidate_predicts_each_by_its_own_measurement_and_is_automatic_on_small_models()
    {
        var (model, im, _) = Setup(_dir.FullName);
        using var f = GgufFile.Open(model);
        // ProbeAll left null: the synthetic model is far below MeasureOptions.ProbeAllWork, so every candidate is probed.
        var options = Options(im, null) with { ProbeAll = null, TypeFactorTensors = 0, ProbeFloor = false, Candidates = [GgmlType.IQ3_S, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0] };
        var (a, table) = BitPlanner.Plan(f, PlanTarget.Bpw(6.0), options, cancellation: TestContext.Current.CancellationToken);
        foreach (var t in table.Tensors)
            foreach (var c in t.Candidates.Where(c => c.Error > 0))
            {
                var probe = Assert.Single(t.Probes, p => p.Type == c.Type);
                Assert.Equal(probe.Kld, t.Predict(c));
            }
        Assert.Empty(table.TypeFactors);
        Assert.True(a.TensorBytes <= (long)Math.Floor(6.0 * f.Tensors.Sum(t => t.ElementCount) / 8));
        // Off: only the ProbeBits points.
        var two = ErrorMeasurement.Measure(f, options with { ProbeAll = false }, cancellation: TestContext.Current.CancellationToken);
        Assert.All(two.Tensors, t => Assert.InRange(t.Probes.Count, 1, 2));
    }

    [Fact]
    public void Pins_are_charged_to_the_budget_and_a_target_below_them_is_an_error()
    {
        var (model, im, _) = Setup(_dir.FullName);
        using var f = GgufFile.Open(model);
        var options = Options(im, Path.Combine(_dir.FullName, "cache"));
        var pins = new[] { TensorPin.Parse(@"ffn_down=q8_0"), TensorPin.Parse("output=f16") };
        var (a, _) = BitPlanner.Plan(f, PlanTarget.Bpw(6.5), options, pins, cancellation: TestContext.Current.CancellationToken);
        Assert.All(a.Tensors.Where(t => t.Name.Contains("ffn_down")), t => { Assert.Equal(GgmlType.Q8_0, t.Type); Assert.Equal("pinned", t.Status); });
        Assert.Equal(GgmlType.F16, a.Tensors.Single(t => t.Name == "output.weight").Type);
        Assert.True(a.TensorBytes <= (long)Math.Floor(6.5 * f.Tensors.Sum(t => t.ElementCount) / 8));
        var e = Assert.Throws<InvalidInputException>(() => BitPlanner.Plan(f, PlanTarget.Bpw(1.0), options, pins, cancellation: TestContext.Current.CancellationToken));
        Assert.Contains("pinned", e.Message);
        var e2 = Assert.Throws<InvalidInputException>(() => BitPlanner.Plan(f, PlanTarget.Bpw(1.0), options, cancellation: TestContext.Current.CancellationToken));
        Assert.Contains("smallest plan", e2.Message);
    }

    [Fact]
    public void A_file_size_target_counts_padding_and_the_header()
    {
        var (model, im, _) = Setup(_dir.FullName);
        using var f = GgufFile.Open(model);
        long size = f.Length / 6;
        var (a, _) = BitPlanner.Plan(f, PlanTarget.Size(size), Options(im, Path.Combine(_dir.FullName, "cache")), cancellation: TestContext.Current.CancellationToken);
        string output = Path.Combine(_dir.FullName, "planned.gguf");
        var summary = ModelQuantizer.Quantize(f, a.Plan, output, new QuantizeOptions { Imatrix = im, Threads = 2 }, cancellation: TestContext.Current.CancellationToken);
        Assert.True(summary.OutputFileBytes <= size, $"{summary.OutputFileBytes} > {size}");
        Assert.True(summary.OutputFileBytes > size * 0.95, $"{summary.OutputFileBytes} leaves much of {size} unused");
    }
}
