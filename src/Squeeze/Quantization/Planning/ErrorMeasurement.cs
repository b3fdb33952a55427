using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Models;
using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Quantization.Planning;

/// <summary>How the planner measures errors.</summary>
public sealed record MeasureOptions
{
    /// <summary>Importance weights (the imatrix). Without them errors are unweighted and i-quants are not candidates.</summary>
    public ImportanceMatrix? Imatrix { get; init; }

    /// <summary>Types to consider (default <see cref="PlanCandidates.Default"/>); each tensor keeps those that fit it.</summary>
    public IReadOnlyList<GgmlType>? Candidates { get; init; }

    /// <summary>
    /// Calibration tokens for the forward-pass probes, in chunks (each chunk is one sequence evaluated from position 0).
    /// Empty: no probes, the plan ranks tensors by raw weighted error only.
    /// </summary>
    public IReadOnlyList<int[]> CalibrationChunks { get; init; } = [];

    /// <summary>
    /// Bits per weight at which each tensor is probed with a forward pass (the candidate nearest to each; two by
    /// default: a low and a middle point of the range the presets span).
    /// </summary>
    public IReadOnlyList<double> ProbeBits { get; init; } = [2.6, 4.5];

    /// <summary>
    /// Reference tensors on which every candidate type is probed to measure the per-type factors
    /// (<see cref="ErrorTable.TypeFactors"/>); 0 turns the factors off.
    /// </summary>
    public int TypeFactorTensors { get; init; } = 0;

    /// <summary>
    /// Whether each tensor is also probed at Q8_0 for its activation-rounding floor (<see cref="TensorErrorProfile.Floor"/>).
    /// Off by default: on tiny-qwen3 the run with floors and type factors (and 6 calibration chunks) did not beat the
    /// run without them (8 chunks); see docs/PLANNER.md.
    /// </summary>
    public bool ProbeFloor { get; init; }

    /// <summary>
    /// Whether every candidate of every tensor is probed with a forward pass (not only the <see cref="ProbeBits"/>
    /// points): each prediction is then the KL divergence measured for that very (tensor, type), with no curve and no
    /// type factor between them. Costs one forward pass over the calibration chunks per candidate. Null (default):
    /// automatic, on when that work (candidates × model weights × calibration tokens) is at most
    /// <see cref="ProbeAllWork"/> (tiny-qwen3-5M with 8 chunks of 256 tokens: 9e12, 918 forward passes, 10 minutes on 2 loaded cores).
    /// </summary>
    public bool? ProbeAll { get; init; }

    /// <summary>The most multiply-adds (candidates × weights × calibration tokens) for which <see cref="ProbeAll"/> turns itself on.</summary>
    public const double ProbeAllWork = 3e13;

    /// <summary>Elements sampled per tensor for the candidate errors (whole rows, evenly strided; all rows when fewer).</summary>
    public long SampleElements { get; init; } = 1 << 19;

    /// <summary>Worker threads.</summary>
    public int Threads { get; init; } = Workers.DefaultThreads;

    /// <summary>Folder of the error cache, or null for none.</summary>
    public string? CacheDirectory { get; init; }
}

/// <summary>Progress of <see cref="ErrorMeasurement.Measure"/>: a stage name and a fraction of it done.</summary>
public readonly record struct MeasureProgress(string Stage, int Done, int Total);

/// <summary>
/// Measures what each candidate type costs each tensor: the importance-weighted quantization error of sampled rows
/// through the real kernels (quantize then dequantize), then forward-pass probes that calibrate the error of each tensor
/// into the KL divergence it causes (see docs/PLANNER.md). Results are cached by a key over the model, the imatrix,
/// the calibration tokens and these settings.
/// </summary>
public static class ErrorMeasurement
{
    /// <summary>The types the planner considers by default (those llama.cpp can load and Squeeze can write).</summary>
    public static IReadOnlyList<GgmlType> DefaultCandidates => PlanCandidates.Default;

    /// <summary>The quantizable tensors of <paramref name="model"/> in llama.cpp's order.</summary>
    public static IReadOnlyList<GgufTensorInfo> QuantizableTensors(GgufFile model) =>
        QuantizationPlan.LlamaOrder(model.Tensors).Where(t => Quantization.QuantizableTensors.Check(t).Allowed).ToList();

    /// <summary>Measures (or reads from the cache) the error table of <paramref name="model"/>.</summary>
    public static ErrorTable Measure(GgufFile model, MeasureOptions options, IProgress<MeasureProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Threads, 1, nameof(options.Threads));
        var clock = Stopwatch.StartNew();
        var tensors = QuantizableTensors(model);
        var types = (options.Candidates ?? PlanCandidates.Default).Distinct().ToList();
        var candidates = tensors.Select(t => PlanCandidates.For(t, types, options.Imatrix)).ToList();
        if (options.ProbeAll is null)
        {
            double work = (double)candidates.Sum(c => c.Count) * tensors.Sum(t => t.ElementCount) * options.CalibrationChunks.Sum(c => c.Length);
            options = options with { ProbeAll = work <= MeasureOptions.ProbeAllWork };
        }
        bool probeAll = options.ProbeAll.Value;
        string key = CacheKey(model, options, types);
        string? cachePath = options.CacheDirectory is null ? null : Path.Combine(options.CacheDirectory, key + ".errors");
        if (cachePath is not null && ErrorTable.TryLoad(cachePath, key) is { } cached) return cached;

        // 1. Candidate errors on sampled rows: one job per (tensor, candidate), spread over the workers.
        for (int i = 0; i < tensors.Count; i++)
            if (candidates[i].Count == 0)
                throw new InvalidInputException($"tensor '{tensors[i].Name}': no candidate type fits rows of {tensors[i].Shape[0]}");
        var jobs = new List<(int Tensor, int Candidate)>();
        for (int i = 0; i < tensors.Count; i++)
            for (int c = 0; c < candidates[i].Count; c++) jobs.Add((i, c));
        // Slow types first so that the pool ends evenly.
        jobs = jobs.OrderByDescending(j => tensors[j.Tensor].ElementCount * Cost(candidates[j.Tensor][j.Candidate])).ToList();
        var errors = tensors.Select((t, i) => new double[candidates[i].Count]).ToArray();
        var samples = new Lazy<(float[] Rows, int Count)>[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
        {
            int ti = i;
            samples[i] = new(() => Sample(model, tensors[ti], options.SampleElements), LazyThreadSafetyMode.ExecutionAndPublication);
        }
        int done = 0;
        Parallel.ForEach(jobs, new ParallelOptions { MaxDegreeOfParallelism = options.Threads, CancellationToken = cancellation }, job =>
        {
            var t = tensors[job.Tensor];
            var (rows, count) = samples[job.Tensor].Value;
            var type = candidates[job.Tensor][job.Candidate];
            var importance = Importance(options.Imatrix, t);
            double e = WeightedError(rows, count, (int)t.Shape[0], (int)(t.Shape.Count > 1 ? t.Shape[1] : 1), t.RowCount, type, importance);
            errors[job.Tensor][job.Candidate] = e;
            progress?.Report(new MeasureProgress("candidate errors", Interlocked.Increment(ref done), jobs.Count));
        });

        var measures = tensors.Select((t, i) => candidates[i].Select((type, c) => new CandidateMeasure(type, GgmlTypes.RowSize(type, t.Shape[0]) * t.RowCount, errors[i][c])).ToList()).ToList();

        // 2. Forward-pass probes.
        var probes = tensors.Select(_ => new List<SensitivityProbe>()).ToList();
        var floors = new double[tensors.Count];
        double floor = 0;
        int calibrationTokens = options.CalibrationChunks.Sum(c => c.Length);
        bool calibrated = calibrationTokens > 0;
        if (calibrated)
        {
            using var calibrator = new KldCalibrator(model, options.CalibrationChunks, options.Threads);
            floor = calibrator.Measure(new Dictionary<string, WeightData>(), cancellation);
            var probeJobs = new List<(int Tensor, CandidateMeasure Candidate)>();
            for (int i = 0; i < tensors.Count; i++)
            {
                foreach (var c in probeAll ? measures[i].Where(m => m.Error > 0) : ProbeCandidates(measures[i], options.ProbeBits, tensors[i].Shape[0]))
                    probeJobs.Add((i, c));
                // The floor: Q8_0, whose weight error is negligible, measures what rounding the activations costs.
                if (options.ProbeFloor && !probeAll && measures[i].FirstOrDefault(m => m.Type == GgmlType.Q8_0) is { } q8) probeJobs.Add((i, q8));
            }
            int probed = 0;
            foreach (var (i, c) in probeJobs)
            {
                cancellation.ThrowIfCancellationRequested();
                var t = tensors[i];
                var bytes = QuantizeTensor(model, t, c.Type, Importance(options.Imatrix, t), options.Threads);
                double kld = calibrator.Measure(new Dictionary<string, WeightData> { [t.Name] = new WeightData(c.Type, bytes) }, cancellation);
                if (c.Type == GgmlType.Q8_0 && options.ProbeFloor && !probeAll) floors[i] = kld;
                else probes[i].Add(new SensitivityProbe(c.Type, c.Error, kld));
                progress?.Report(new MeasureProgress("forward-pass probes", ++probed, probeJobs.Count));
            }
        }
        var profiles = tensors.Select((t, i) => new TensorErrorProfile(t.Name, t.Shape, t.Type, measures[i], probes[i], floors[i])).ToList();
        var factors = new Dictionary<GgmlType, double>();
        if (calibrated && options.TypeFactorTensors > 0 && !probeAll)
        {
            using var calibrator = new KldCalibrator(model, options.CalibrationChunks, options.Threads);
            factors = TypeFactors(model, tensors, measures, probes, floors, options, calibrator, progress, cancellation);
        }
        var table = new ErrorTable(key, profiles, calibrated, calibrationTokens, floor, factors) { MeasureTime = clock.Elapsed };
        if (cachePath is not null)
        {
            Directory.CreateDirectory(options.CacheDirectory!);
            table.Save(cachePath);
        }
        return table;
    }

    /// <summary>
    /// Per-type factors. On a few reference tensors (the largest predicted KLD at the middle probe, one per kind), every
    /// quantized candidate below 8 bpw is probed; with the tensor's floor <c>f</c> (its KLD at Q8_0: activation rounding,
    /// common to every quantized type) and its reference probe (type R, error e_R, KLD m_R), type T's ratio is
    /// <c>(m_T − f) / ((m_R − f) · e_T / e_R)</c> (the curves' slope is 1 to within a few percent); the factor is the
    /// geometric mean over the reference tensors, clamped to [1/4, 4].
    /// </summary>
    private static Dictionary<GgmlType, double> TypeFactors(GgufFile model, IReadOnlyList<GgufTensorInfo> tensors, List<List<CandidateMeasure>> measures,
        List<List<SensitivityProbe>> probes, double[] floors, MeasureOptions options, KldCalibrator calibrator, IProgress<MeasureProgress>? progress, CancellationToken cancellation)
    {
        var refs = Enumerable.Range(0, tensors.Count).Where(i => probes[i].Count > 0)
            .Select(i => (i, Kind: BitAllocator.Kind(tensors[i].Name), Kld: probes[i].OrderBy(p => p.Error).First().Kld))
            .OrderByDescending(x => x.Kld).DistinctBy(x => x.Kind).Take(options.TypeFactorTensors).Select(x => x.i).ToList();
        var jobs = new List<(int Tensor, CandidateMeasure Candidate)>();
        foreach (int i in refs)
            foreach (var c in measures[i])
                if (GgmlTypes.Get(c.Type).IsQuantized && c.Error > 0 && GgmlTypes.Get(c.Type).BitsPerWeight < 8 && !probes[i].Any(p => p.Type == c.Type))
                    jobs.Add((i, c));
        var measured = new Dictionary<(int, GgmlType), double>();
        foreach (int i in refs) foreach (var p in probes[i]) measured[(i, p.Type)] = p.Kld;
        int done = 0;
        foreach (var (i, c) in jobs)
        {
            cancellation.ThrowIfCancellationRequested();
            var t = tensors[i];
            var bytes = QuantizeTensor(model, t, c.Type, Importance(options.Imatrix, t), options.Threads);
            measured[(i, c.Type)] = calibrator.Measure(new Dictionary<string, WeightData> { [t.Name] = new WeightData(c.Type, bytes) }, cancellation);
            progress?.Report(new MeasureProgress("type factors", ++done, jobs.Count));
        }
        var logs = new Dictionary<GgmlType, List<double>>();
        foreach (int i in refs)
        {
            double floor = floors[i];
            // The reference: the probe with the smaller error (nearest the bits plans use most).
            var r = probes[i].OrderBy(p => p.Error).First();
            double sRef = Math.Max(r.Kld - floor, 0.1 * r.Kld) / r.Error;
            if (!(sRef > 0)) continue;
            foreach (var c in measures[i])
            {
                if (c.Type == GgmlType.Q8_0 || !measured.TryGetValue((i, c.Type), out double m)) continue;
                double ratio = Math.Clamp(Math.Max(m - floor, 0.1 * m) / (sRef * c.Error), 0.25, 4);
                (logs.TryGetValue(c.Type, out var l) ? l : logs[c.Type] = []).Add(Math.Log(ratio));
            }
        }
        return logs.ToDictionary(kv => kv.Key, kv => Math.Exp(kv.Value.Average()));
    }

    /// <summary>The candidates probed: for each probe point, the candidate with the least error among those nearest in bits per weight.</summary>
    internal static IEnumerable<CandidateMeasure> ProbeCandidates(IReadOnlyList<CandidateMeasure> measures, IReadOnlyList<double> bits, long rowLength)
    {
        var chosen = new List<CandidateMeasure>();
        foreach (double b in bits)
        {
            var best = measures.Where(m => m.Error > 0)
                .OrderBy(m => Math.Round(Math.Abs(8.0 * GgmlTypes.RowSize(m.Type, rowLength) / rowLength - b), 3))
                .ThenBy(m => m.Error).FirstOrDefault();
            if (best is not null && !chosen.Contains(best)) chosen.Add(best);
        }
        return chosen;
    }

    /// <summary>Relative cost of quantizing with <paramref name="type"/> (the i-quant searches are slow), for scheduling.</summary>
    private static int Cost(GgmlType type) => type switch
    {
        GgmlType.IQ1_S or GgmlType.IQ1_M or GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ2_S => 20,
        GgmlType.IQ3_XXS or GgmlType.IQ3_S => 10,
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.IQ4_XS or GgmlType.IQ4_NL => 3,
        _ => 1,
    };

    /// <summary>The tensor's importance weights when the imatrix has a matching entry (llama.cpp's rule), else null.</summary>
    internal static float[]? Importance(ImportanceMatrix? imatrix, GgufTensorInfo t) =>
        imatrix is not null && imatrix.Find(t.Name) is { } w && imatrix.Fits(t, out _, out _) ? w : null;

    /// <summary>Evenly strided whole rows of <paramref name="t"/> as floats (all rows when they fit the sample).</summary>
    private static unsafe (float[] Rows, int Count) Sample(GgufFile model, GgufTensorInfo t, long sampleElements)
    {
        long rows = t.RowCount;
        int n = checked((int)t.Shape[0]);
        int count = (int)Math.Min(rows, Math.Max(16, sampleElements / Math.Max(1, n)));
        var data = new float[(long)count * n];
        var kernel = t.Type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 ? null : QuantKernels.Get(t.Type);
        byte* p = model.GetTensorPointer(t);
        for (int s = 0; s < count; s++)
        {
            long r = count == rows ? s : (long)((s + 0.5) * rows / count);
            ReadRow(t.Type, kernel, p + r * t.RowSize, (int)t.RowSize, data.AsSpan(s * n, n));
        }
        return (data, count);
    }

    private static unsafe void ReadRow(GgmlType type, IQuantKernel? kernel, byte* row, int bytes, Span<float> x)
    {
        switch (type)
        {
            case GgmlType.F32: new ReadOnlySpan<float>(row, x.Length).CopyTo(x); break;
            case GgmlType.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(row, x.Length), x); break;
            case GgmlType.BF16:
                var h = new ReadOnlySpan<ushort>(row, x.Length);
                for (int i = 0; i < x.Length; i++) x[i] = Bf16.ToFloat(h[i]);
                break;
            default: kernel!.DequantizeRow(new ReadOnlySpan<byte>(row, bytes), x); break;
        }
    }

    /// <summary>
    /// <c>Σ v_j (x_j − ŵ_j)²</c> over the sampled rows, scaled to the tensor's <paramref name="totalRows"/>;
    /// <c>v</c> = the importance of the row's matrix (expert), or 1 without an imatrix.
    /// </summary>
    internal static double WeightedError(float[] rows, int count, int n, int rowsPerMatrix, long totalRows, GgmlType type, float[]? importance)
    {
        var kernel = QuantKernels.Get(type);
        var q = new byte[GgmlTypes.RowSize(type, n)];
        var y = new float[n];
        double sum = 0;
        int experts = importance is null ? 1 : importance.Length / n;
        for (int s = 0; s < count; s++)
        {
            long r = count == totalRows ? s : (long)((s + 0.5) * totalRows / count);
            var x = rows.AsSpan(s * n, n);
            ReadOnlySpan<float> w = importance is null ? default : importance.AsSpan((int)(r / rowsPerMatrix % experts) * n, n);
            if (type is GgmlType.F32) continue;
            kernel.QuantizeRow(x, q, w);
            kernel.DequantizeRow(q, y);
            double e = 0;
            if (w.IsEmpty)
                for (int j = 0; j < n; j++) { double d = x[j] - y[j]; e += d * d; }
            else
                for (int j = 0; j < n; j++) { double d = x[j] - y[j]; e += w[j] * d * d; }
            sum += e;
        }
        return sum * totalRows / count;
    }

    /// <summary>The whole tensor quantized to <paramref name="type"/> as ModelQuantizer would write it.</summary>
    internal static unsafe byte[] QuantizeTensor(GgufFile model, GgufTensorInfo t, GgmlType type, float[]? importance, int threads)
    {
        int n = checked((int)t.Shape[0]);
        long rows = t.RowCount;
        int rowsPerMatrix = (int)(t.Shape.Count > 1 ? t.Shape[1] : 1);
        int outRow = checked((int)GgmlTypes.RowSize(type, n));
        var result = new byte[checked(outRow * rows)];
        var kernel = QuantKernels.Get(type);
        var sourceKernel = t.Type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 ? null : QuantKernels.Get(t.Type);
        byte* p = model.GetTensorPointer(t);
        long rowSize = t.RowSize;
        int experts = importance is null ? 1 : importance.Length / n;
        Workers.For((int)rows, threads, (r0, r1) =>
        {
            var x = new float[n];
            for (int r = r0; r < r1; r++)
            {
                ReadRow(t.Type, sourceKernel, p + r * rowSize, (int)rowSize, x);
                ReadOnlySpan<float> w = importance is null ? default : importance.AsSpan(r / rowsPerMatrix % experts * n, n);
                kernel.QuantizeRow(x, result.AsSpan(r * outRow, outRow), w);
            }
        }, minRange: 8);
        return result;
    }

    /// <summary>
    /// The cache key: SHA-256 over the model's header (metadata and tensor table), its length and a sample of every
    /// tensor's bytes; the imatrix weights; the calibration tokens; the candidates and the measuring settings.
    /// </summary>
    internal static unsafe string CacheKey(GgufFile model, MeasureOptions options, IReadOnlyList<GgmlType> types)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s) => h.AppendData(Encoding.UTF8.GetBytes(s + "\n"));
        Add("squeeze-plan v1");
        Add(model.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var kv in model.Metadata) Add($"{kv.Key}={kv.Value}");
        foreach (var t in model.Tensors)
        {
            Add($"{t.Name} {t.Type} {string.Join(",", t.Shape)} {t.Offset}");
            byte* p = model.GetTensorPointer(t);
            long size = t.ByteSize;
            h.AppendData(new ReadOnlySpan<byte>(p, (int)Math.Min(size, 4096)));
            if (size > 8192) h.AppendData(new ReadOnlySpan<byte>(p + size / 2, 4096));
            if (size > 4096) h.AppendData(new ReadOnlySpan<byte>(p + size - 4096, 4096));
        }
        if (options.Imatrix is { } im)
            foreach (var name in im.Names.Order(StringComparer.Ordinal))
            {
                Add(name);
                h.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(im.Find(name)!.AsSpan()));
            }
        else Add("no imatrix");
        foreach (var chunk in options.CalibrationChunks)
            h.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(chunk.AsSpan()));
        Add(string.Join(",", types.Select(t => (int)t)));
        Add(string.Join(",", options.ProbeBits.Select(b => b.ToString("R", System.Globalization.CultureInfo.InvariantCulture))));
        Add(options.SampleElements.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Add("type factors " + options.TypeFactorTensors.ToString(System.Globalization.CultureInfo.InvariantCulture) + (options.ProbeFloor ? " floor" : "") + (options.ProbeAll == true ? " all" : ""));
        return Convert.ToHexStringLower(h.GetHashAndReset())[..32];
    }
}
