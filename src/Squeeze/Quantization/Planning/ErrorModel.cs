using System.Globalization;
using Squeeze.Quants;

namespace Squeeze.Quantization.Planning;

/// <summary>
/// One candidate type of one tensor: its bytes and its measured quantization error, the importance-weighted squared
/// error <c>Σ_rows Σ_j v_j (w_j − ŵ_j)²</c> of the tensor (estimated from sampled rows, scaled to all rows), where
/// <c>v</c> is the imatrix's mean squared activation of input column j. It is the expected squared error the
/// quantized matrix adds to its product <c>W x</c> (for uncorrelated activation columns).
/// </summary>
public sealed record CandidateMeasure(GgmlType Type, long Bytes, double Error);

/// <summary>
/// A forward-pass measurement: the tensor alone quantized to <paramref name="Type"/> (whole tensor, real kernels), the
/// mean KL divergence of the model's next-token distribution against the unquantized model on the calibration tokens.
/// </summary>
public sealed record SensitivityProbe(GgmlType Type, double Error, double Kld);

/// <summary>
/// What the planner knows about one quantizable tensor: its candidates with measured errors, and the probes that turn
/// an error into a predicted KL divergence (<see cref="Predict(double)"/>).
/// </summary>
public sealed class TensorErrorProfile
{
    /// <summary>Slopes of log KLD against log error allowed when extrapolating past the probes (2 = purely quadratic in the error amplitude, as second-order theory says).</summary>
    public const double MinSlope = 0.7, MaxSlope = 1.6;

    public TensorErrorProfile(string name, IReadOnlyList<long> shape, GgmlType sourceType, IReadOnlyList<CandidateMeasure> candidates, IReadOnlyList<SensitivityProbe> probes,
        double floor = 0)
    {
        Floor = floor;
        Name = name;
        Shape = shape;
        SourceType = sourceType;
        Candidates = candidates;
        Probes = probes.Where(p => p.Error > 0).OrderBy(p => p.Error).ToList();
    }

    public string Name { get; }
    public IReadOnlyList<long> Shape { get; }
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
    public GgmlType SourceType { get; }
    public IReadOnlyList<CandidateMeasure> Candidates { get; }

    /// <summary>
    /// The KLD the tensor causes at Q8_0, where its weight error is negligible: what rounding its input activations to
    /// 8 bits (as every quantized type's matmul does; F16/BF16 weights multiply F16 activations) costs. Part of every
    /// quantized candidate's prediction and of none of the float ones; subtracted from the probes before the curve fit.
    /// </summary>
    public double Floor { get; }

    /// <summary>Forward-pass probes, by increasing error. Empty when the model was not calibrated.</summary>
    public IReadOnlyList<SensitivityProbe> Probes { get; }

    /// <summary>
    /// The predicted KL divergence this tensor adds when quantized with error <paramref name="error"/>: the probes'
    /// measured KLD interpolated linearly in log-log space against the error; past the probes, the nearest segment's
    /// slope (clamped to [<see cref="MinSlope"/>, <see cref="MaxSlope"/>]; slope 1 with a single probe, i.e. KLD
    /// proportional to the error as the second-order (Fisher) expansion predicts). Without probes: the error itself.
    /// </summary>
    public double Predict(double error)
    {
        if (error <= 0) return 0;
        var p = Probes;
        if (p.Count == 0) return error;
        double Kld(SensitivityProbe s) => Math.Max(s.Kld - Floor, 1e-3 * s.Kld + 1e-12);
        if (p.Count == 1) return Kld(p[0]) * error / p[0].Error;
        double le = Math.Log(error);
        int seg;
        if (error <= p[0].Error) seg = 0;
        else if (error >= p[^1].Error) seg = p.Count - 2;
        else
        {
            seg = 0;
            while (seg < p.Count - 2 && error > p[seg + 1].Error) seg++;
        }
        var a = p[seg]; var b = p[seg + 1];
        double la = Math.Log(a.Error), lb = Math.Log(b.Error);
        double slope = lb - la < 1e-9 ? 1 : (Math.Log(Kld(b)) - Math.Log(Kld(a))) / (lb - la);
        bool inside = error > a.Error && error < b.Error;
        if (!inside) slope = Math.Clamp(slope, MinSlope, MaxSlope);
        // Extrapolate from the nearer end point.
        var anchor = error <= a.Error ? a : error >= b.Error ? b : a;
        return Math.Exp(Math.Log(Kld(anchor)) + slope * (le - Math.Log(anchor.Error)));
    }

    /// <summary>
    /// The predicted KL divergence of candidate <paramref name="c"/>: the probe's KLD when this candidate itself was
    /// probed; otherwise <see cref="Predict(double)"/> times its type's factor (<see cref="ErrorTable.TypeFactors"/>; 1
    /// when none was measured), plus the floor for a quantized type.
    /// </summary>
    public double Predict(CandidateMeasure c)
    {
        // Measured for this very type (every candidate probed): the measurement is the prediction.
        foreach (var p in Probes)
            if (p.Type == c.Type && p.Error == c.Error) return p.Kld;
        return Predict(c.Error) * (TypeFactors?.GetValueOrDefault(c.Type, 1.0) ?? 1.0) + (GgmlTypes.Get(c.Type).IsQuantized ? Floor : 0);
    }

    /// <summary>The table's type factors, set when the profile joins a table.</summary>
    internal IReadOnlyDictionary<GgmlType, double>? TypeFactors { get; set; }

    public override string ToString() => Name;
}

/// <summary>The measured errors of a model's quantizable tensors, as cached and re-planned from.</summary>
public sealed class ErrorTable
{
    public ErrorTable(string key, IReadOnlyList<TensorErrorProfile> tensors, bool calibrated, int calibrationTokens, double baseKldFloor,
        IReadOnlyDictionary<GgmlType, double>? typeFactors = null)
    {
        Key = key;
        Tensors = tensors;
        TypeFactors = typeFactors ?? new Dictionary<GgmlType, double>();
        foreach (var t in tensors) t.TypeFactors = TypeFactors;
        Calibrated = calibrated;
        CalibrationTokens = calibrationTokens;
        BaseKldFloor = baseKldFloor;
    }

    /// <summary>The cache key: a hash of the model, the imatrix, the calibration tokens and the measuring settings.</summary>
    public string Key { get; }

    public IReadOnlyList<TensorErrorProfile> Tensors { get; }

    /// <summary>
    /// Per-type corrections of the error-to-KLD curves: the same weighted error costs the model more or less depending on
    /// the error's structure (block offsets, codebooks), so each type's measured KLD on a few reference tensors is
    /// compared with what the curves predict; the geometric mean ratio multiplies that type's predictions everywhere.
    /// </summary>
    public IReadOnlyDictionary<GgmlType, double> TypeFactors { get; }

    /// <summary>Whether forward-pass probes calibrate the errors into KL divergence.</summary>
    public bool Calibrated { get; }

    /// <summary>Tokens the probes were scored on.</summary>
    public int CalibrationTokens { get; }

    /// <summary>KLD of the unquantized model against itself as Squeeze computes it (should be 0: a check of the harness).</summary>
    public double BaseKldFloor { get; }

    /// <summary>Whether the table was read from the cache rather than measured.</summary>
    public bool FromCache { get; init; }

    /// <summary>Time spent measuring (zero from the cache).</summary>
    public TimeSpan MeasureTime { get; init; }

    private const string Magic = "squeeze-plan-errors 2";

    /// <summary>Writes the table as text (one line per tensor, candidate and probe), atomically.</summary>
    public void Save(string path)
    {
        var w = new System.Text.StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        w.Append(Magic).Append('\n');
        w.Append("key ").Append(Key).Append('\n');
        w.Append(inv, $"calibrated {(Calibrated ? 1 : 0)} {CalibrationTokens} {BaseKldFloor:R}\n");
        foreach (var (type, factor) in TypeFactors.OrderBy(kv => (int)kv.Key)) w.Append(inv, $"factor {(int)type} {factor:R}\n");
        foreach (var t in Tensors)
        {
            w.Append(inv, $"tensor {t.Name} {(int)t.SourceType} {string.Join(",", t.Shape)} {t.Floor:R}\n");
            foreach (var c in t.Candidates) w.Append(inv, $"cand {(int)c.Type} {c.Bytes} {c.Error:R}\n");
            foreach (var p in t.Probes) w.Append(inv, $"probe {(int)p.Type} {p.Error:R} {p.Kld:R}\n");
        }
        w.Append("end\n");
        var bytes = System.Text.Encoding.UTF8.GetBytes(w.ToString());
        Squeeze.IO.AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>Reads a table written by <see cref="Save"/>; null when the file is absent, damaged or for another key.</summary>
    public static ErrorTable? TryLoad(string path, string key)
    {
        if (!File.Exists(path)) return null;
        try
        {
            var inv = CultureInfo.InvariantCulture;
            var lines = File.ReadAllLines(path);
            if (lines.Length < 4 || lines[0] != Magic || lines[1] != "key " + key || lines[^1] != "end") return null;
            var head = lines[2].Split(' ');
            bool calibrated = head[1] == "1";
            int tokens = int.Parse(head[2], inv);
            double floor = double.Parse(head[3], inv);
            var tensors = new List<TensorErrorProfile>();
            string? name = null; GgmlType source = default; long[] shape = []; double tensorFloor = 0;
            var cands = new List<CandidateMeasure>(); var probes = new List<SensitivityProbe>();
            var factors = new Dictionary<GgmlType, double>();
            void Flush()
            {
                if (name is not null) tensors.Add(new TensorErrorProfile(name, shape, source, cands.ToList(), probes.ToList(), tensorFloor));
                cands.Clear(); probes.Clear();
            }
            for (int i = 3; i < lines.Length - 1; i++)
            {
                var f = lines[i].Split(' ');
                switch (f[0])
                {
                    case "tensor":
                        Flush();
                        name = f[1]; source = (GgmlType)int.Parse(f[2], inv); shape = f[3].Split(',').Select(s => long.Parse(s, inv)).ToArray();
                        tensorFloor = double.Parse(f[4], inv);
                        break;
                    case "cand": cands.Add(new((GgmlType)int.Parse(f[1], inv), long.Parse(f[2], inv), double.Parse(f[3], inv))); break;
                    case "factor": factors[(GgmlType)int.Parse(f[1], inv)] = double.Parse(f[2], inv); break;
                    case "probe": probes.Add(new((GgmlType)int.Parse(f[1], inv), double.Parse(f[2], inv), double.Parse(f[3], inv))); break;
                    default: return null;
                }
            }
            Flush();
            return new ErrorTable(key, tensors, calibrated, tokens, floor, factors) { FromCache = true };
        }
        catch (Exception e) when (e is FormatException or IndexOutOfRangeException or OverflowException or IOException)
        {
            return null;
        }
    }
}
