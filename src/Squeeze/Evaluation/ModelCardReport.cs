using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Squeeze.IO;

namespace Squeeze.Evaluation;

/// <summary>Everything the saved results say about one model file.</summary>
public sealed class ModelCardRow
{
    public required ModelInfo Model { get; init; }
    public double? Ppl { get; set; }
    public double? PplUncertainty { get; set; }
    /// <summary>Cor(ln PPL(Q), ln PPL(base)) as a fraction (the cards' ρPPL).</summary>
    public double? Correlation { get; set; }
    public double? PplRatio { get; set; }
    public double? Kld { get; set; }
    public double? KldUncertainty { get; set; }
    /// <summary>RMS Δp as a fraction.</summary>
    public double? RmsDeltaP { get; set; }
    /// <summary>Same top p as a fraction.</summary>
    public double? SameTop { get; set; }
    /// <summary>Task name → accuracy in percent.</summary>
    public Dictionary<string, double> Tasks { get; } = new(StringComparer.Ordinal);
    /// <summary>Bench test name (pp512, tg128, ...) → tokens per second.</summary>
    public Dictionary<string, double> Speed { get; } = new(StringComparer.Ordinal);

    /// <summary>Mean of the task scores, when there are any.</summary>
    public double? TaskAverage => Tasks.Count == 0 ? null : Tasks.Values.Average();
}

/// <summary>
/// The tables of a quantized model's card, built from saved results (<see cref="ResultFile"/>): one row per model file,
/// largest first, with size, bits per weight, shrinkage against a reference model, PPL, ρPPL, PPL ratio, KLD, RMS Δp,
/// same top p, each task's score and their average, and tokens per second per bench test. Markdown, CSV and PNG charts
/// of KLD and of the PPL ratio against file size.
/// </summary>
public sealed class ModelCardReport
{
    private ModelCardReport(IReadOnlyList<ModelCardRow> rows, ModelCardRow? reference, IReadOnlyList<string> tasks, IReadOnlyList<string> speeds,
        IReadOnlyList<string> notes)
    {
        Rows = rows;
        Reference = reference;
        TaskNames = tasks;
        SpeedTests = speeds;
        Notes = notes;
    }

    /// <summary>
    /// Warnings about the results combined: strided perplexity runs left out of the PPL column, and PPL or KL-divergence
    /// results measured on different texts, contexts or base files (their numbers are then not comparable across rows).
    /// </summary>
    public IReadOnlyList<string> Notes { get; }

    public IReadOnlyList<ModelCardRow> Rows { get; }

    /// <summary>The row sizes are compared with (by default the largest file).</summary>
    public ModelCardRow? Reference { get; }

    public IReadOnlyList<string> TaskNames { get; }
    public IReadOnlyList<string> SpeedTests { get; }

    /// <summary>
    /// Whether <paramref name="row"/> is on the size/KLD front: it has a mean KLD and no model of its size or smaller
    /// has a lower one. These are the candidates worth keeping; the report marks them.
    /// </summary>
    public bool IsBestAtSize(ModelCardRow row) =>
        row.Kld is double kld && !Rows.Any(o => !ReferenceEquals(o, row) && o.Kld is double k && o.Model.FileBytes <= row.Model.FileBytes
            && (k < kld || k == kld && o.Model.FileBytes < row.Model.FileBytes));

    /// <summary>
    /// Combines results by model file name; a later result of the same kind replaces an earlier one.
    /// <paramref name="reference"/> names the reference model's file (default: the largest).
    /// </summary>
    public static ModelCardReport Build(IEnumerable<ResultFile.Loaded> results, string? reference = null)
    {
        var rows = new Dictionary<string, ModelCardRow>(StringComparer.Ordinal);
        var notes = new List<string>();
        var pplSettings = new SortedSet<string>(StringComparer.Ordinal);
        var klBases = new SortedSet<string>(StringComparer.Ordinal);
        var strided = new SortedSet<string>(StringComparer.Ordinal);
        ModelCardRow RowFor(ModelInfo model)
        {
            if (!rows.TryGetValue(model.File, out var row)) rows[model.File] = row = new ModelCardRow { Model = model };
            return row;
        }
        foreach (var r in results)
        {
            var o = r.Result;
            if (r.Kind == ResultFile.Kinds.Bench)
            {
                foreach (var item in o as JsonArray ?? [])
                {
                    if (item is null) continue;
                    var model = item["model"]?.Deserialize<ModelInfo>(ResultFile.Options) ?? r.Model;
                    if (model is null || item["test"] is not JsonNode test || item["avg_ts"] is not JsonNode ts) continue;
                    RowFor(model).Speed[test.GetValue<string>()] = ts.GetValue<double>();
                }
                continue;
            }
            if (r.Model is null) throw new InvalidInputException($"{r.Path}: the {r.Kind} result names no model");
            // A strided PPL (--ppl-stride) scores other tokens with other contexts than the chunked PPL of the card.
            if (r.Kind == ResultFile.Kinds.Perplexity && o["stride"] is not null && Number(o, r, "stride") > 0)
            {
                strided.Add(r.Model.File);
                RowFor(r.Model);
                continue;
            }
            var row = RowFor(r.Model);
            switch (r.Kind)
            {
                case ResultFile.Kinds.Perplexity:
                    row.Ppl = Number(o, r, "ppl");
                    row.PplUncertainty = Number(o, r, "uncertainty");
                    pplSettings.Add(string.Create(CultureInfo.InvariantCulture, $"{r.Dataset ?? "?"} with n_ctx {(o["context_size"] is null ? "?" : Number(o, r, "context_size").ToString(CultureInfo.InvariantCulture))}"));
                    break;
                case ResultFile.Kinds.KlDivergence:
                    klBases.Add(r.Dataset ?? "?");
                    row.Kld = Number(o["kld"], r, "value");
                    row.KldUncertainty = Number(o["kld"], r, "uncertainty");
                    row.Correlation = Number(o, r, "correlation");
                    row.PplRatio = Number(o["ppl_ratio"], r, "value");
                    row.RmsDeltaP = Number(o["rms_delta_p"], r, "value");
                    row.SameTop = Number(o["same_top"], r, "value");
                    // Without a separate perplexity run, PPL(Q) of the KL run is the model's PPL over the same tokens.
                    row.Ppl ??= Number(o["ppl_q"], r, "value");
                    row.PplUncertainty ??= Number(o["ppl_q"], r, "uncertainty");
                    break;
                default:
                    if (o["accuracy"] is JsonNode acc)
                        row.Tasks[o["task"]?.GetValue<string>() ?? r.Kind] = acc.GetValue<double>();
                    break;
            }
        }
        var list = rows.Values.OrderByDescending(x => x.Model.FileBytes).ThenBy(x => x.Model.File, StringComparer.Ordinal).ToList();
        ModelCardRow? refRow = null;
        if (reference is not null)
            refRow = list.FirstOrDefault(x => x.Model.File == reference || x.Model.Path == reference)
                ?? throw new InvalidInputException($"--reference: no result is about '{reference}' (models: {string.Join(", ", list.Select(x => x.Model.File))})");
        else refRow = list.FirstOrDefault();
        var tasks = list.SelectMany(x => x.Tasks.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        var speeds = list.SelectMany(x => x.Speed.Keys).Distinct().OrderBy(t => t.StartsWith("pp", StringComparison.Ordinal) && !t.Contains('+') ? 0 : t.StartsWith("tg", StringComparison.Ordinal) ? 1 : 2).ThenBy(t => t, StringComparer.Ordinal).ToList();
        if (strided.Count > 0)
            notes.Add($"Strided perplexity results (--ppl-stride) are not shown in the PPL column: {string.Join(", ", strided)}.");
        if (pplSettings.Count > 1)
            notes.Add($"The PPL results come from different texts or contexts ({string.Join("; ", pplSettings)}): they are not comparable across rows.");
        if (klBases.Count > 1)
            notes.Add($"The KL-divergence results are against different base files ({string.Join(", ", klBases)}): they are not comparable across rows.");
        return new ModelCardReport(list, refRow, tasks, speeds, notes);
    }

    private static double Number(JsonNode? node, ResultFile.Loaded r, string field)
    {
        if (node?[field] is not JsonNode v) throw new InvalidInputException($"{r.Path}: the {r.Kind} result has no \"{field}\"");
        try { return v.GetValue<double>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException) { throw new InvalidInputException($"{r.Path}: \"{field}\" is not a number"); }
    }

    /// <summary>The table's header and cells (text), as both renderings show them.</summary>
    public (IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Cells) Table(bool plain)
    {
        bool marks = Rows.Count(r => r.Kld is not null) > 1;
        var header = new List<string> { "Model", "Type", "Size", "BPW", "Shrinkage", "PPL", "ρPPL", "PPL ratio", "KLD", "RMS Δp", "Same top p" };
        header.AddRange(TaskNames);
        if (TaskNames.Count > 0) header.Add("Avg tasks");
        header.AddRange(SpeedTests.Select(t => $"{t} t/s"));
        if (marks && plain) header.Add("Best at size");
        var cells = new List<IReadOnlyList<string>>();
        foreach (var r in Rows)
        {
            var c = new List<string>
            {
                marks && !plain && IsBestAtSize(r) ? r.Model.File + " ★" : r.Model.File,
                r.Model.FileType ?? "",
                plain ? r.Model.FileBytes.ToString(CultureInfo.InvariantCulture) : Size(r.Model.FileBytes),
                F(r.Model.BitsPerWeight, "0.00"),
                Reference is null || Reference.Model.FileBytes == 0 ? "" : F(100.0 * (1 - (double)r.Model.FileBytes / Reference.Model.FileBytes), "0.0") + (plain ? "" : "%"),
                r.Ppl is double p ? (plain ? F(p, "0.0000") : $"{F(p, "0.0000")} ± {F(r.PplUncertainty ?? 0, "0.0000")}") : "",
                r.Correlation is double cor ? F(100 * cor, "0.00") + (plain ? "" : "%") : "",
                r.PplRatio is double ratio ? F(ratio, "0.0000") : "",
                r.Kld is double k ? F(k, "0.000000") : "",
                r.RmsDeltaP is double rms ? F(100 * rms, "0.000") + (plain ? "" : "%") : "",
                r.SameTop is double top ? F(100 * top, "0.000") + (plain ? "" : "%") : "",
            };
            foreach (var t in TaskNames) c.Add(r.Tasks.TryGetValue(t, out var a) ? F(a, "0.00") : "");
            if (TaskNames.Count > 0) c.Add(r.TaskAverage is double avg ? F(avg, "0.00") : "");
            foreach (var t in SpeedTests) c.Add(r.Speed.TryGetValue(t, out var ts) ? F(ts, "0.00") : "");
            if (marks && plain) c.Add(IsBestAtSize(r) ? "1" : "0");
            cells.Add(c);
        }
        return (header, cells);
    }

    public string ToMarkdown()
    {
        var (header, cells) = Table(plain: false);
        var s = new StringBuilder();
        s.Append("| ").Append(string.Join(" | ", header)).Append(" |\n");
        s.Append('|').Append(string.Join('|', header.Select((_, i) => i < 2 ? " --- " : " ---: "))).Append("|\n");
        foreach (var row in cells) s.Append("| ").Append(string.Join(" | ", row.Select(EscapeMarkdown))).Append(" |\n");
        if (Rows.Count(r => r.Kld is not null) > 1) s.Append("\n★ the lowest KL divergence at its size or smaller: the candidates worth keeping.\n");
        if (Reference is not null) s.Append("\nShrinkage is against ").Append(EscapeMarkdown(Reference.Model.File)).Append(". PPL ratio, KLD, RMS Δp and Same top p are against each run's KL-divergence base.\n");
        foreach (var note in Notes) s.Append("\nNote: ").Append(EscapeMarkdown(note)).Append('\n');
        return s.ToString();
    }

    /// <summary>CSV with plain numbers (sizes in bytes, percentages without the sign).</summary>
    public string ToCsv()
    {
        var (header, cells) = Table(plain: true);
        var s = new StringBuilder();
        s.Append(string.Join(',', header.Select(Quote))).Append('\n');
        foreach (var row in cells) s.Append(string.Join(',', row.Select(Quote))).Append('\n');
        return s.ToString();
    }

    /// <summary>Writes <paramref name="prefix"/>.md, .csv, -kld.png and -ppl-ratio.png (charts only when some model has the values); returns the files written.</summary>
    public IReadOnlyList<string> Write(string prefix)
    {
        var written = new List<string>();
        void Text(string path, string text)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            AtomicFile.Write(path, s => s.Write(bytes));
            written.Add(path);
        }
        Text(prefix + ".md", ToMarkdown());
        Text(prefix + ".csv", ToCsv());
        bool gib = Rows.Any(r => r.Model.FileBytes >= 1L << 30);
        double Scale(long bytes) => gib ? bytes / (double)(1L << 30) : bytes / (double)(1L << 20);
        string unit = gib ? "GiB" : "MiB";
        void Chart(string path, Func<ModelCardRow, double?> value, string title, string yLabel, bool logY)
        {
            var points = Rows.Where(r => value(r) is not null).OrderBy(r => r.Model.FileBytes).ToList();
            if (points.Count == 0) return;
            Charts.Scatter(path, [new ChartSeries(yLabel, points.Select(r => Scale(r.Model.FileBytes)).ToList(), points.Select(r => value(r)!.Value).ToList(),
                points.Select(r => Path.GetFileNameWithoutExtension(r.Model.File)).ToList())], title, $"file size ({unit})", yLabel, logY);
            written.Add(path);
        }
        Chart(prefix + "-kld.png", r => r.Kld, "KL divergence against file size", "mean KLD", logY: true);
        Chart(prefix + "-ppl-ratio.png", r => r.PplRatio, "PPL(Q)/PPL(base) against file size", "PPL ratio", logY: false);
        return written;
    }

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    private static string Size(long bytes) => bytes >= 1L << 30
        ? F(bytes / (double)(1L << 30), "0.00") + " GiB"
        : F(bytes / (double)(1L << 20), "0.00") + " MiB";

    private static string EscapeMarkdown(string s) => s.Replace("|", "\\|", StringComparison.Ordinal);

    private static string Quote(string s) => s.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}
