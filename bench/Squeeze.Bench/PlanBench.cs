using System.Diagnostics;
using System.Globalization;
using Squeeze.Evaluation;
using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Models;
using Squeeze.Oracle;
using Squeeze.Quantization;
using Squeeze.Quantization.Planning;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// The planner against llama.cpp's presets at equal size: <c>squeeze-bench plan [--model M] [--presets Q2_K,...]
/// [--imatrix-chunks N] [--calib-chunks N] [--eval-chunks N] [--probe-all | --probe-two] [-t N] [--out DIR]</c>. An imatrix is collected from
/// groups_merged.txt with Squeeze's forward pass; each preset is made by <c>llama_model_quantize</c> with that imatrix;
/// the planner gets the preset's file size as its target; both files are scored by mean KL divergence against the
/// unquantized model on wikitext (Squeeze's forward pass, 256-token chunks, second half of each chunk scored as
/// llama-perplexity does). Prints a Markdown table and writes the chart of both fronts and the plans' heatmaps.
/// </summary>
internal static class PlanBench
{
    public static int Run(string[] args)
    {
        string data = Environment.GetEnvironmentVariable("SQUEEZE_TEST_DATA") ?? Path.GetFullPath("../shared/data");
        string model = Path.Combine(data, "models/tiny-qwen3-5M-F32.gguf");
        var presets = new List<string> { "Q2_K", "IQ3_XXS", "IQ3_S", "Q3_K_M", "IQ4_XS", "Q4_K_M", "Q5_K_M", "Q6_K" };
        int imatrixChunks = 64, calibChunks = 8, evalChunks = 40, threads = Environment.ProcessorCount, chunk = 256;
        string outDir = Path.Combine(Path.GetTempPath(), "squeeze-plan-bench");
        string? candidates = null;
        string probes = "2.6,4.5";
        bool? probeAll = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": model = args[++i]; break;
                case "--presets": presets = args[++i].Split(',').ToList(); break;
                case "--imatrix-chunks": imatrixChunks = Int(args[++i]); break;
                case "--calib-chunks": calibChunks = Int(args[++i]); break;
                case "--eval-chunks": evalChunks = Int(args[++i]); break;
                case "--chunk": chunk = Int(args[++i]); break;
                case "--candidates": candidates = args[++i]; break;
                case "--probes": probes = args[++i]; break;
                case "--probe-all": probeAll = true; break;
                case "--probe-two": probeAll = false; break;
                case "-t": threads = Int(args[++i]); break;
                case "--out": outDir = args[++i]; break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }
        Directory.CreateDirectory(outDir);
        string name = Path.GetFileNameWithoutExtension(model);
        var calibration = File.ReadAllText(Path.Combine(data, "calibration/groups_merged.txt"));
        var wikitext = File.ReadAllText(Path.Combine(data, "eval/wikitext-2-raw/wiki.test.raw"));

        // 1. The imatrix: Squeeze's collector (ImatrixRun, as `squeeze imatrix -c CTX --chunks N` runs it).
        var clock = Stopwatch.StartNew();
        string imatrixPath = Path.Combine(outDir, $"{name}.imatrix.gguf");
        int ctx, collected;
        using (var m = TransformerModel.Load(model))
        {
            ctx = Math.Min(chunk, (int)m.Hparams.ContextLength);
            var tokenizer = Squeeze.Tokenizers.Tokenizer.FromGguf(m.File);
            var bytes = System.Text.Encoding.UTF8.GetBytes(calibration);
            int length = bytes.Length > 0 && bytes[^1] == (byte)'\n' ? bytes.Length - 1 : bytes.Length;
            var tokens = tokenizer.Encode(bytes.AsSpan(0, length), addSpecial: true);
            var collectedData = new ImatrixData(ctx) { Dataset = "groups_merged.txt" };
            var io = new ImatrixOptions { ContextSize = ctx, BatchSize = ctx, Chunks = imatrixChunks, ComputePerplexity = false, Threads = threads };
            var result = ImatrixRun.Collect(m, tokens, tokenizer.AddBos ? tokenizer.Bos : null, collectedData, io);
            collected = result.ChunksDone;
            collectedData.Write(imatrixPath, ImatrixFormat.Gguf);
        }
        var imatrix = ImportanceMatrix.Load(imatrixPath);
        Console.WriteLine($"model {name}; imatrix from {collected} chunks of {ctx} tokens of groups_merged.txt in {clock.Elapsed.TotalSeconds:0.0} s (Squeeze's imatrix collector, ImatrixRun)");

        using var input = GgufFile.Open(model);
        var evalChunkList = KldCalibrator.Chunks(input, wikitext, ctx, evalChunks);
        var scorer = new Scorer(input, evalChunkList, threads);

        // 2. Measure once.
        var options = new MeasureOptions
        {
            Imatrix = imatrix,
            Threads = threads,
            CalibrationChunks = KldCalibrator.Chunks(input, calibration, ctx, calibChunks),
            Candidates = candidates?.Split(',').Select(s => GgmlTypes.TryParse(s, out var t) ? t : throw new ArgumentException(s)).ToList(),
            ProbeBits = probes.Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToList(),
            ProbeAll = probeAll,
            CacheDirectory = Path.Combine(outDir, "cache"),
        };
        var table = ErrorMeasurement.Measure(input, options, new Progress<MeasureProgress>(_ => { }));
        // The additivity check: the plan's measured KLD on the calibration chunks beside the sum of per-tensor predictions.
        var calibScorer = new Scorer(input, options.CalibrationChunks, threads, wholeChunk: true);
        Console.WriteLine($"error table: {table.Tensors.Count} tensors, {table.Tensors.Sum(t => t.Candidates.Count)} candidate errors, " +
            $"{table.Tensors.Sum(t => t.Probes.Count)} forward probes on {table.CalibrationTokens} tokens; " +
            (table.FromCache ? "from the cache" : $"measured in {table.MeasureTime.TotalSeconds:0.0} s"));
        // Re-planning for a new target: the table from the cache, then the optimizer.
        var replanClock = Stopwatch.StartNew();
        var again = ErrorMeasurement.Measure(input, options);
        // A third of the unquantized file: a feasible target for both benchmark models.
        var replanned = BitAllocator.Allocate(input, again, PlanTarget.Size(input.Length / 3));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"re-planning from the cache (read the table {(again.FromCache ? "from the cache" : "MEASURED AGAIN")}, plan {replanned.BitsPerWeight:0.00} bpw): {replanClock.Elapsed.TotalSeconds:0.00} s"));
        Console.WriteLine();
        Console.WriteLine("| preset | preset bytes | preset bpw | preset KLD | plan bytes | plan bpw | plan KLD | ratio | preset predicted / measured (calib) | plan predicted / measured (calib) | plan time | optimal |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");

        var presetFront = new List<(double Bpw, double Kld, string Label)>();
        var planFront = new List<(double Bpw, double Kld, string Label)>();
        var weights = SimpleImatrix.Weights(imatrix);
        var overrides = SimpleImatrix.Overrides(imatrix);
        double worst = 0;
        bool identical = true;
        foreach (var preset in presets)
        {
            var target = LlamaFileTypes.Parse(preset);
            string presetPath = Path.Combine(outDir, $"{name}-{preset}.gguf");
            if (!LlamaQuantize.Run(model, presetPath, (int)target.FileType, pure: false, threads, weights, overrides))
            {
                Console.WriteLine($"| {preset} | llama.cpp refused | | | | | | | | | | |");
                continue;
            }
            long presetBytes = new FileInfo(presetPath).Length;
            double presetBpw = Bpw(presetPath);
            double presetKld = scorer.Score(presetPath);
            // What the error model predicts for the preset's own types, and what the preset measures on the calibration chunks.
            double presetPredicted = 0;
            using (var pf = GgufFile.Open(presetPath))
                foreach (var t in pf.Tensors)
                    if (table.Tensors.FirstOrDefault(x => x.Name == t.Name) is { } prof && prof.Candidates.FirstOrDefault(c => c.Type == t.Type) is { } cm)
                        presetPredicted += prof.Predict(cm);
            double presetCalib = calibScorer.Score(presetPath);

            var planClock = Stopwatch.StartNew();
            var allocation = BitAllocator.Allocate(input, table, PlanTarget.Size(presetBytes), extraHeaderBytes: PresetHeader(presetPath) - input.DataOffset);
            var planTime = planClock.Elapsed;
            string planPath = Path.Combine(outDir, $"{name}-plan-{preset}.gguf");
            ModelQuantizer.Quantize(input, allocation.Plan, planPath, new QuantizeOptions { Imatrix = imatrix, Threads = threads });
            File.WriteAllText(Path.Combine(outDir, $"{name}-plan-{preset}.txt"), allocation.TensorTypeFile());
            allocation.WriteHeatmap(Path.Combine(outDir, $"{name}-plan-{preset}.png"), $"{name}: plan at the size of {preset}");
            long planBytes = new FileInfo(planPath).Length;
            // llama.cpp: the tensor-type file reproduces the file byte for byte, and the file loads and runs.
            string llamaPath = Path.Combine(outDir, $"{name}-plan-{preset}-llama.gguf");
            var rules = allocation.TensorTypeFile().Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(r => (r[..r.IndexOf('=')], GgmlTypes.TryParse(r[(r.IndexOf('=') + 1)..], out var tt) ? (int)tt : -1)).ToList();
            bool same = LlamaQuantize.Run(model, llamaPath, (int)allocation.Plan.FileType, pure: false, threads, weights, overrides, tensorTypes: rules)
                && File.ReadAllBytes(llamaPath).AsSpan().SequenceEqual(File.ReadAllBytes(planPath));
            bool loads;
            using (var oracle = new OracleModel(planPath, contextSize: 16, batchSize: 8, threads: threads))
                loads = oracle.Decode([1, 2, 3], 0, allLogits: false).All(float.IsFinite);
            if (!same || !loads) identical = false;
            File.Delete(llamaPath);
            double planBpw = Bpw(planPath);
            double planKld = scorer.Score(planPath);
            double ratio = planKld / presetKld;
            worst = Math.Max(worst, ratio);
            presetFront.Add((presetBpw, presetKld, preset));
            planFront.Add((planBpw, planKld, preset));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {preset} | {presetBytes:N0} | {presetBpw:0.000} | {presetKld:0.000000} | {planBytes:N0}{(planBytes > presetBytes ? " (LARGER)" : "")} | {planBpw:0.000} | {planKld:0.000000} | {ratio:0.000} | {presetPredicted:0.000000} / {presetCalib:0.000000} | {allocation.PredictedKld:0.000000} / {calibScorer.Score(planPath):0.000000} | {planTime.TotalMilliseconds:0} ms | {(allocation.Exact ? "proven" : "greedy")} |"));
        }
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"worst KLD ratio plan/preset: {worst:0.000} (acceptance <= 0.85, goal 0.6)"));
        Console.WriteLine(identical
            ? "every plan: llama_model_quantize with the tensor-type file gives the same bytes, and llama.cpp loads and runs the file"
            : "MISMATCH: a plan's tensor-type file did not reproduce the file, or llama.cpp could not run it");
        string chart = Path.Combine(outDir, $"{name}-fronts.png");
        Charts.Scatter(chart,
        [
            new ChartSeries("llama.cpp presets", presetFront.Select(p => p.Bpw).ToList(), presetFront.Select(p => p.Kld).ToList(), presetFront.Select(p => p.Label).ToList()),
            new ChartSeries("squeeze plan", planFront.Select(p => p.Bpw).ToList(), planFront.Select(p => p.Kld).ToList()),
        ], $"{name}: KL divergence vs bits per weight (wikitext)", "bits per weight", "mean KLD (log10)", logY: true);
        Console.WriteLine($"chart: {chart}; plans, heatmaps and files in {outDir}");
        return 0;
    }

    /// <summary>
    /// The preset's header size: the planned file has the same metadata and tensor names, so the same header; budgeting
    /// with it (rather than the planner's upper bound) gives the plan exactly the preset's bytes for tensor data.
    /// </summary>
    private static long PresetHeader(string path)
    {
        using var f = GgufFile.Open(path);
        return f.DataOffset;
    }

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    private static double Bpw(string path)
    {
        using var f = GgufFile.Open(path);
        return f.Tensors.Sum(t => t.ByteSize) * 8.0 / f.Tensors.Sum(t => t.ElementCount);
    }

    /// <summary>Mean KLD of a file against the base model on chunks (the second half of each, as llama-perplexity scores; or every position, as the planner's probes do).</summary>
    private sealed class Scorer
    {
        private readonly IReadOnlyList<int[]> _chunks;
        private readonly int _threads;
        private readonly float[][] _base;
        private readonly int _vocab;
        private readonly bool _whole;

        public Scorer(GgufFile input, IReadOnlyList<int[]> chunks, int threads, bool wholeChunk = false)
        {
            _whole = wholeChunk;
            _chunks = chunks;
            _threads = threads;
            using var model = TransformerModel.FromFile(input);
            _vocab = model.Hparams.VocabSize;
            var t = new Transformer(model, chunks.Max(c => c.Length), threads);
            _base = chunks.Select(c =>
            {
                t.Cache.Clear();
                var l = t.Evaluate(c);
                KldCalibrator.LogSoftmaxInPlace(l, _vocab);
                return l;
            }).ToArray();
        }

        public double Score(string path)
        {
            using var model = TransformerModel.Load(path);
            var t = new Transformer(model, _chunks.Max(c => c.Length), _threads);
            double sum = 0;
            long n = 0;
            for (int c = 0; c < _chunks.Count; c++)
            {
                t.Cache.Clear();
                var logits = t.Evaluate(_chunks[c]);
                int len = _chunks[c].Length;
                for (int p = _whole ? 0 : len / 2; p < (_whole ? len : len - 1); p++)
                {
                    sum += Kld.Divergence(_base[c].AsSpan(p * _vocab, _vocab), logits.AsSpan(p * _vocab, _vocab));
                    n++;
                }
            }
            return sum / n;
        }
    }
}
