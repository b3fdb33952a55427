using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Squeeze.Gguf;
using Squeeze.Models;
using Squeeze.Quants;

namespace Squeeze.Quantization.Planning;

/// <summary>The size a plan must fit: bits per weight (over all tensors, as llama-quantize reports it) or a file size in bytes.</summary>
public sealed record PlanTarget
{
    private PlanTarget(double? bpw, long? bytes) { BitsPerWeight = bpw; FileBytes = bytes; }

    public double? BitsPerWeight { get; }
    public long? FileBytes { get; }

    public static PlanTarget Bpw(double bpw) =>
        bpw is > 0 and < 32 ? new(bpw, null) : throw new InvalidInputException($"--target-bpw must be above 0 and below 32, not {bpw.ToString(CultureInfo.InvariantCulture)}");

    public static PlanTarget Size(long bytes) =>
        bytes > 0 ? new(null, bytes) : throw new InvalidInputException($"--target-size must be positive, not {bytes}");

    /// <summary>Parses <c>N</c>, <c>NK</c>, <c>NM</c>, <c>NG</c> (binary multiples; <c>KiB</c>/<c>MiB</c>/<c>GiB</c> and a trailing <c>B</c> accepted).</summary>
    public static PlanTarget ParseSize(string text)
    {
        var m = Regex.Match(text.Trim(), @"^([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?$");
        if (!m.Success) throw new InvalidInputException($"--target-size '{text}' is not a size (examples: 3500000000, 512M, 3.2G)");
        double n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        double scale = m.Groups[2].Value.ToUpperInvariant() switch { "K" => 1L << 10, "M" => 1L << 20, "G" => 1L << 30, "T" => 1L << 40, _ => 1 };
        return Size((long)Math.Floor(n * scale));
    }

    public override string ToString() => BitsPerWeight is { } b ? string.Create(CultureInfo.InvariantCulture, $"{b:0.####} bpw") : $"{FileBytes:N0} bytes";
}

/// <summary>A user rule fixing a tensor's type: regex searched in the tensor name (first match wins); charged to the budget.</summary>
public sealed record TensorPin(string Pattern, GgmlType Type)
{
    private readonly Regex _regex = new(Pattern, RegexOptions.CultureInvariant);

    public bool Matches(string name) => _regex.IsMatch(name);

    /// <summary>Parses <c>PATTERN=TYPE</c>.</summary>
    public static TensorPin Parse(string text)
    {
        int eq = text.LastIndexOf('=');
        if (eq <= 0 || eq == text.Length - 1) throw new InvalidInputException($"--pin '{text}' is not PATTERN=TYPE");
        if (!GgmlTypes.TryParse(text[(eq + 1)..], out var type)) throw new InvalidInputException($"--pin '{text}': '{text[(eq + 1)..]}' is not a ggml type");
        try { return new TensorPin(text[..eq], type); }
        catch (ArgumentException e) { throw new InvalidInputException($"--pin '{text}': bad pattern: {e.Message}"); }
    }
}

/// <summary>One tensor of an allocation.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="Layer">Its layer, or -1.</param>
/// <param name="Kind">Its kind (<c>attn_q</c>, <c>ffn_down</c>, <c>token_embd</c>, ...).</param>
/// <param name="Elements">Elements.</param>
/// <param name="Type">Chosen type.</param>
/// <param name="Bytes">Bytes in the output.</param>
/// <param name="PredictedKld">Predicted KL divergence this tensor adds (0 when kept, NaN when pinned to an unmeasured type).</param>
/// <param name="Status">"planned", "pinned" or "kept" (not quantizable).</param>
public sealed record PlannedTensor(string Name, int Layer, string Kind, long Elements, GgmlType Type, long Bytes, double PredictedKld, string Status)
{
    public double BitsPerWeight => Elements == 0 ? 0 : Bytes * 8.0 / Elements;
}

/// <summary>The result of <see cref="BitAllocator.Allocate"/>: the plan and what the error model predicts for it.</summary>
public sealed class Allocation
{
    internal Allocation(QuantizationPlan plan, IReadOnlyList<PlannedTensor> tensors, PlanTarget target, long budget, bool exact, long headerBytes)
    {
        Plan = plan;
        Tensors = tensors;
        Target = target;
        Budget = budget;
        Exact = exact;
        HeaderBytes = headerBytes;
    }

    public QuantizationPlan Plan { get; }
    public IReadOnlyList<PlannedTensor> Tensors { get; }
    public PlanTarget Target { get; }

    /// <summary>Bytes the tensors could use (all of them, planned, pinned and kept; padded when the target is a file size).</summary>
    public long Budget { get; }

    /// <summary>Whether the exact solver proved the choice optimal for the predicted errors.</summary>
    public bool Exact { get; }

    /// <summary>The header size assumed for a file-size target (0 for a bpw target).</summary>
    public long HeaderBytes { get; }

    public long Elements => Tensors.Sum(t => t.Elements);
    public long TensorBytes => Tensors.Sum(t => t.Bytes);
    public double BitsPerWeight => Elements == 0 ? 0 : TensorBytes * 8.0 / Elements;
    public double PredictedKld => Tensors.Where(t => double.IsFinite(t.PredictedKld)).Sum(t => t.PredictedKld);

    /// <summary>
    /// The plan as llama-quantize's <c>--tensor-type-file</c>: one <c>^name$=type</c> per quantizable tensor (the name
    /// regex-escaped and anchored, so each rule matches exactly one tensor; llama.cpp lower-cases patterns, which
    /// changes nothing in these). Use it with the file type of <see cref="QuantizationPlan.FileType"/> and the same
    /// imatrix; overrides take precedence over the file type's rules and every quantizable tensor has one.
    /// </summary>
    public string TensorTypeFile()
    {
        var sb = new StringBuilder();
        foreach (var t in Tensors.Where(t => t.Status != "kept"))
            sb.Append('^').Append(Regex.Escape(t.Name)).Append("$=").Append(t.Type.Name()).Append('\n');
        return sb.ToString();
    }

    /// <summary>Bits per weight of each layer's tensors (all of them), by layer; -1 gathers the tensors outside the blocks.</summary>
    public IReadOnlyList<(int Layer, double BitsPerWeight, long Bytes)> LayerBits() =>
        Tensors.GroupBy(t => t.Layer).OrderBy(g => g.Key)
            .Select(g => (g.Key, g.Sum(t => t.Bytes) * 8.0 / Math.Max(1, g.Sum(t => t.Elements)), g.Sum(t => t.Bytes))).ToList();

    /// <summary>A heatmap of bits per weight, layers × tensor kinds (the tensors outside the blocks in a last row).</summary>
    public void WriteHeatmap(string path, string title)
    {
        var planned = Tensors.Where(t => t.Status != "kept").ToList();
        var kinds = planned.Where(t => t.Layer >= 0).Select(t => t.Kind).Distinct().ToList();
        var globals = planned.Where(t => t.Layer < 0).Select(t => t.Kind).Distinct().ToList();
        var columns = kinds.Concat(globals).ToList();
        int layers = planned.Where(t => t.Layer >= 0).Select(t => t.Layer + 1).DefaultIfEmpty(0).Max();
        int rows = layers + (globals.Count > 0 ? 1 : 0);
        var values = new double[Math.Max(1, rows), Math.Max(1, columns.Count)];
        for (int r = 0; r < values.GetLength(0); r++) for (int c = 0; c < values.GetLength(1); c++) values[r, c] = double.NaN;
        foreach (var t in planned)
        {
            int r = t.Layer >= 0 ? t.Layer : layers;
            values[r, columns.IndexOf(t.Kind)] = t.BitsPerWeight;
        }
        var rowLabels = Enumerable.Range(0, layers).Select(l => l.ToString(CultureInfo.InvariantCulture)).ToList();
        if (globals.Count > 0) rowLabels.Add("global");
        Squeeze.Evaluation.Charts.Heatmap(path, values, rowLabels, columns.Count == 0 ? ["-"] : columns, title, "bits per weight");
    }
}

/// <summary>
/// Chooses each tensor's type for a size budget: a multiple-choice knapsack over (bytes, predicted KL divergence) per
/// tensor (<see cref="MultipleChoiceKnapsack"/>), from an <see cref="ErrorTable"/>. Pinned tensors and tensors that are
/// not quantized are charged to the budget first.
/// </summary>
public static class BitAllocator
{
    /// <summary>Allocates types to fit <paramref name="target"/>.</summary>
    /// <param name="model">The model the table was measured on.</param>
    /// <param name="table">Measured errors.</param>
    /// <param name="target">The size to fit.</param>
    /// <param name="pins">User rules, applied first (first match wins).</param>
    /// <param name="extraHeaderBytes">For a file-size target: bytes the output's metadata adds to the input's (imatrix keys).</param>
    public static Allocation Allocate(GgufFile model, ErrorTable table, PlanTarget target, IReadOnlyList<TensorPin>? pins = null, long extraHeaderBytes = 256)
    {
        pins ??= [];
        bool padded = target.FileBytes is not null;
        long align = model.Alignment;
        long Size(long bytes) => padded ? (bytes + align - 1) / align * align : bytes;
        var profiles = table.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var all = QuantizationPlan.LlamaOrder(model.Tensors).ToList();
        long totalElements = all.Sum(t => t.ElementCount);
        long header = padded ? (model.DataOffset + extraHeaderBytes + align - 1) / align * align : 0;
        long budget = target.BitsPerWeight is { } bpw ? (long)Math.Floor(bpw * totalElements / 8) : target.FileBytes!.Value - header;

        var fixedTypes = new Dictionary<string, (GgmlType Type, string Status)>(StringComparer.Ordinal);
        var free = new List<(GgufTensorInfo Tensor, TensorErrorProfile Profile)>();
        long fixedBytes = 0;
        foreach (var t in all)
        {
            if (!Quantization.QuantizableTensors.Check(t).Allowed)
            {
                fixedTypes[t.Name] = (t.Type, "kept");
                fixedBytes += Size(t.ByteSize);
                continue;
            }
            var pin = pins.FirstOrDefault(p => p.Matches(t.Name));
            if (pin is not null)
            {
                var (type, _) = TypeFallback.Apply(t.Name, t.Shape[0], pin.Type);
                fixedTypes[t.Name] = (type, "pinned");
                fixedBytes += Size(GgmlTypes.RowSize(type, t.Shape[0]) * t.RowCount);
                continue;
            }
            if (!profiles.TryGetValue(t.Name, out var profile))
                throw new InvalidInputException($"tensor '{t.Name}' is not in the error table: was it measured on another model?");
            free.Add((t, profile));
        }
        if (fixedBytes > budget)
            throw new InvalidInputException($"the target ({target}) leaves {budget:N0} bytes for tensors; pinned and unquantized tensors alone take {fixedBytes:N0}");

        var items = free.Select(f => (IReadOnlyList<KnapsackOption>)f.Profile.Candidates
            .Select(c => new KnapsackOption(Size(c.Bytes), f.Profile.Predict(c))).ToList()).ToList();
        MultipleChoiceKnapsack.Solution solution;
        try { solution = MultipleChoiceKnapsack.Solve(items, budget - fixedBytes); }
        catch (InvalidInputException)
        {
            long least = fixedBytes + items.Sum(i => i.Min(o => o.Bytes));
            throw new InvalidInputException($"the target ({target}) is below the smallest plan the candidates allow ({least:N0} bytes of tensors, {least * 8.0 / totalElements:0.###} bpw)");
        }

        var chosen = new Dictionary<string, (GgmlType Type, double Kld)>(StringComparer.Ordinal);
        for (int i = 0; i < free.Count; i++)
        {
            var c = free[i].Profile.Candidates[solution.Choice[i]];
            chosen[free[i].Tensor.Name] = (c.Type, free[i].Profile.Predict(c));
        }

        var planned = new List<PlannedTensor>();
        var typeBytes = new Dictionary<GgmlType, long>();
        foreach (var t in all)
        {
            GgmlType type; double kld; string status;
            if (chosen.TryGetValue(t.Name, out var ch)) { type = ch.Type; kld = ch.Kld; status = "planned"; }
            else
            {
                (type, status) = fixedTypes[t.Name];
                kld = status == "kept" ? 0
                    : profiles.TryGetValue(t.Name, out var p) && p.Candidates.FirstOrDefault(c => c.Type == type) is { } m ? p.Predict(m) : double.NaN;
            }
            long bytes = GgmlTypes.RowSize(type, t.Shape[0]) * t.RowCount;
            if (status != "kept") typeBytes[type] = typeBytes.GetValueOrDefault(type) + bytes;
            planned.Add(new PlannedTensor(t.Name, TensorName.LayerOf(t.Name) ?? -1, Kind(t.Name), t.ElementCount, type, bytes, kld, status));
        }

        var fileType = ChooseFileType(typeBytes);
        var tensorPlans = planned.Select((p, i) =>
        {
            var t = all[i];
            string reason = p.Status switch
            {
                "kept" => $"kept ({Quantization.QuantizableTensors.Check(t).Reason})",
                "pinned" => $"{p.Type.Name()} pinned by --pin",
                _ => string.Create(CultureInfo.InvariantCulture, $"{p.Type.Name()} planned for {target} (predicted KLD {p.PredictedKld:G3})"),
            };
            return new TensorPlan(t, p.Type, reason, false, p.Status != "kept" && ImatrixRequirement.Requires(t.Name, p.Type, fileType));
        }).ToList();
        return new Allocation(new QuantizationPlan(fileType, tensorPlans), planned, target, budget + header, solution.Exact, header);
    }

    /// <summary>
    /// The file type recorded for a plan: the one whose default tensor type holds the most bytes (llama.cpp applies the
    /// tensor-type overrides only when that default is a quantized type, so a float-dominated plan records Q8_0).
    /// </summary>
    public static LlamaFileType ChooseFileType(IReadOnlyDictionary<GgmlType, long> bytesByType)
    {
        foreach (var (type, _) in bytesByType.OrderByDescending(kv => kv.Value).ThenBy(kv => (int)kv.Key))
        {
            if (!GgmlTypes.Get(type).IsQuantized) continue;
            if (LlamaFileTypes.FileTypeFor(type) is { } ft && LlamaFileTypes.Get(ft).DefaultType is { } d && GgmlTypes.Get(d).IsQuantized)
                return ft;
        }
        return LlamaFileType.Q8_0;
    }

    /// <summary>A tensor's kind: its name without <c>blk.N.</c> and the <c>.weight</c> suffix.</summary>
    public static string Kind(string name)
    {
        var s = name;
        if (TensorName.LayerOf(s) is not null) s = s[(s.IndexOf('.', TensorName.BlockPrefix.Length) + 1)..];
        if (s.EndsWith(".weight", StringComparison.Ordinal)) s = s[..^".weight".Length];
        return s;
    }
}

/// <summary>The planner's entry point: measure (or read the cache), then allocate.</summary>
public static class BitPlanner
{
    /// <summary>Plans <paramref name="model"/> for <paramref name="target"/>; returns the allocation and the table it came from.</summary>
    public static (Allocation Allocation, ErrorTable Table) Plan(GgufFile model, PlanTarget target, MeasureOptions options,
        IReadOnlyList<TensorPin>? pins = null, IProgress<MeasureProgress>? progress = null, CancellationToken cancellation = default)
    {
        var table = ErrorMeasurement.Measure(model, options, progress, cancellation);
        return (BitAllocator.Allocate(model, table, target, pins, ExtraHeaderBytes(model, options.Imatrix)), table);
    }

    /// <summary>
    /// Bytes the quantized file's header adds to the input's (<see cref="ModelQuantizer"/>'s keys the input lacks:
    /// quantization version, file type, the imatrix keys); the padded header is at most the input's padded header plus these, padded.
    /// </summary>
    public static long ExtraHeaderBytes(GgufFile model, Squeeze.Imatrix.ImportanceMatrix? imatrix)
    {
        long Kv(string key, long value) => model.Metadata.Any(kv => kv.Key == key) ? 0 : 8 + Encoding.UTF8.GetByteCount(key) + 4 + value;
        long Str(string s) => 8 + Math.Min(ModelQuantizer.MaxOverrideStringBytes, Encoding.UTF8.GetByteCount(s));
        long extra = Kv(GgufKeys.General.QuantizationVersion, 4) + Kv(GgufKeys.General.FileType, 4);
        if (imatrix is not null)
        {
            extra += Kv(GgufKeys.Quantize.ImatrixFile, Str(imatrix.FileName)) + Kv(GgufKeys.Quantize.ImatrixEntriesCount, 4) + Kv(GgufKeys.Quantize.ImatrixChunksCount, 4);
            if (imatrix.Datasets.Count > 0) extra += Kv(GgufKeys.Quantize.ImatrixDataset, Str(imatrix.Datasets[0]));
        }
        return extra;
    }

    /// <summary>The plan alone, for <c>squeeze quantize --target-bpw / --target-size</c>.</summary>
    public static QuantizationPlan PlanFor(GgufFile model, PlanTarget target, MeasureOptions options, IReadOnlyList<TensorPin>? pins = null,
        IProgress<MeasureProgress>? progress = null, CancellationToken cancellation = default) =>
        Plan(model, target, options, pins, progress, cancellation).Allocation.Plan;
}
