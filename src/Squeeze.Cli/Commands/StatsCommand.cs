using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;
using Squeeze.Evaluation;
using Squeeze.Imatrix;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze stats IMATRIX [--csv | --json] [--plot FILE.png [--plot-stat NAME]] [--active-threshold T]</c>: the statistics
/// of an imatrix (the same as <c>squeeze imatrix --show-statistics --in-file IMATRIX</c>).
/// </summary>
internal static class StatsCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("imatrix") { Description = "The imatrix (GGUF or legacy .dat)." };
        var options = StatsOptions.Create();
        var command = new Command("stats", "Show an imatrix's per-tensor and per-layer statistics (llama-imatrix --show-statistics, PR #14891, layer importance).") { file };
        options.AddTo(command);
        command.SetAction(p => CommandRunner.Run(() => Show(p.GetRequiredValue(file), options.Read(p))));
        return command;
    }

    /// <summary>The statistics to plot: name, label, value (NaN = none).</summary>
    private static readonly (string Name, string Label, Func<TensorStatistics, double> Value)[] PlotStats =
    [
        ("sum_sq", "Σ(Act²)", t => t.SumSq),
        ("min", "Min", t => t.Min),
        ("max", "Max", t => t.Max),
        ("mean", "μ", t => t.Mean),
        ("stddev", "σ", t => t.StdDev),
        ("active", "% Active", t => t.ActivePercent),
        ("entropy", "Entropy", t => t.Entropy),
        ("entropy_norm", "E (norm) %", t => t.EntropyPercent),
        ("zd", "ZD %", t => t.ZdPercent),
        ("cossim", "CosSim", t => t.CosSim),
        ("signed_mean", "mean E[x]", t => t.Signed?.Mean ?? double.NaN),
        ("signed_stddev", "σ E[x]", t => t.Signed?.StdDev ?? double.NaN),
        ("skewness", "skewness", t => t.Signed?.Skewness ?? double.NaN),
        ("kurtosis", "kurtosis", t => t.Signed?.Kurtosis ?? double.NaN),
        ("gain", "gain", t => t.Signed?.Gain ?? double.NaN),
        ("l2", "L2 distance", t => t.Signed?.L2Distance ?? double.NaN),
        ("pearson", "Pearson", t => t.Signed?.Pearson ?? double.NaN),
    ];

    internal sealed record Settings(float ActiveThreshold, bool Csv, bool Json, string? Plot, string PlotStat);

    internal sealed class StatsOptions
    {
        private Option<float> _threshold = null!;
        private Option<bool> _csv = null!, _json = null!;
        private Option<string?> _plot = null!;
        private Option<string> _plotStat = null!;

        public static StatsOptions Create()
        {
            var o = new StatsOptions
            {
                _threshold = new Option<float>("--active-threshold") { Description = "|mean square| at or below which a column counts as inactive.", DefaultValueFactory = _ => ImatrixStatistics.DefaultActiveThreshold },
                _csv = new Option<bool>("--csv") { Description = "Print CSV (tensors, a blank line, layers)." },
                _json = new Option<bool>("--json") { Description = "Print JSON." },
                _plot = new Option<string?>("--plot") { Description = "Draw a heatmap (layers x tensor kinds) of --plot-stat to this PNG file." },
                _plotStat = new Option<string>("--plot-stat") { Description = "The statistic to plot.", DefaultValueFactory = _ => "sum_sq" },
            };
            o._plotStat.AcceptOnlyFromAmong(PlotStats.Select(s => s.Name).ToArray());
            return o;
        }

        public void AddTo(Command c)
        {
            c.Options.Add(_threshold);
            c.Options.Add(_csv);
            c.Options.Add(_json);
            c.Options.Add(_plot);
            c.Options.Add(_plotStat);
        }

        public Settings Read(ParseResult p) => new(p.GetValue(_threshold), p.GetValue(_csv), p.GetValue(_json), p.GetValue(_plot), p.GetRequiredValue(_plotStat));
    }

    internal static int Show(string path, Settings s)
    {
        if (s.Csv && s.Json) throw new InvalidInputException("choose one of --csv and --json");
        if (!(s.ActiveThreshold >= 0) || !float.IsFinite(s.ActiveThreshold)) throw new InvalidInputException("--active-threshold must be a finite number of at least 0");
        if (!File.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);
        var file = ImatrixFile.Read(path);
        var data = new ImatrixData(file.ChunkSize > 0 ? file.ChunkSize : 512);
        data.Merge(file);
        var report = ImatrixStatistics.Compute(data, s.ActiveThreshold);
        if (report.Tensors.Count == 0) throw new InvalidInputException($"cannot compute statistics for {path}: no entry has data");

        if (s.Json) Console.Out.Write(Json(path, file, report));
        else if (s.Csv) Console.Out.Write(Csv(report));
        else RenderTables(path, report);

        if (s.Plot is not null)
        {
            var stat = PlotStats.First(p => p.Name == s.PlotStat);
            var kinds = report.Tensors.Where(t => t.Block >= 0).Select(t => t.Kind).Distinct().Order(StringComparer.Ordinal).ToList();
            var layers = report.Tensors.Where(t => t.Block >= 0).Select(t => t.Block).Distinct().Order().ToList();
            if (kinds.Count == 0) throw new InvalidInputException("nothing to plot: the imatrix has no per-layer entries");
            var values = new double[layers.Count, kinds.Count];
            for (int r = 0; r < layers.Count; r++) for (int c = 0; c < kinds.Count; c++) values[r, c] = double.NaN;
            foreach (var t in report.Tensors.Where(t => t.Block >= 0))
                values[layers.IndexOf(t.Block), kinds.IndexOf(t.Kind)] = stat.Value(t);
            Charts.Heatmap(s.Plot, values, layers.Select(l => l.ToString(CultureInfo.InvariantCulture)).ToList(), kinds,
                $"{Path.GetFileName(path)}: {stat.Label}", stat.Label);
            if (!s.Json && !s.Csv) AnsiConsole.Console.WriteLine($"heatmap of {stat.Name} written to {s.Plot}");
        }
        return CommandRunner.Ok;
    }

    private static string F(double v, string format) => double.IsNaN(v) ? "-" : v.ToString(format, CultureInfo.InvariantCulture);

    private static void RenderTables(string path, ImatrixStatisticsReport report)
    {
        var console = AnsiConsole.Console;
        // Redirected output would wrap the wide tables at 80 columns.
        if (!CommandRunner.Interactive) console.Profile.Width = Math.Max(console.Profile.Width, 200);
        var t = new Table().Title(Markup.Escape($"{Path.GetFileName(path)}: {report.Tensors.Count} tensors"));
        foreach (var (name, right) in new[] { ("Layer", true), ("Tensor", false), ("Σ(Act²)", true), ("Min", true), ("Max", true), ("μ", true), ("σ", true),
            ("% Active", true), ("N", true), ("Entropy", true), ("E (norm)", true), ("ZD", true), ("CosSim", true) })
            t.AddColumn(right ? new TableColumn(new Text(name)).RightAligned() : new TableColumn(new Text(name)));
        foreach (var r in report.Tensors)
            t.AddTextRow(r.Layer, r.Kind, F(r.SumSq, "0.00"), F(r.Min, "0.0000"), F(r.Max, "0.0000"), F(r.Mean, "0.00"), F(r.StdDev, "0.00"),
                F(r.ActivePercent, "0.00") + "%", r.Elements.ToString(CultureInfo.InvariantCulture), F(r.Entropy, "0.0000"), F(r.EntropyPercent, "0.00") + "%",
                F(r.ZdPercent, "0.00") + "%", F(r.CosSim, "0.0000"));
        console.Write(t);

        if (report.HasInSum)
        {
            var sgn = new Table().Title("activation statistics (Σx: PR #14891)");
            foreach (var name in new[] { "Layer", "Tensor", "Σ E[x²]", "mean", "σ", "skewness", "kurtosis", "H norm", "gain", "L2", "CosSim", "Pearson" })
                sgn.AddColumn(name is "Layer" or "Tensor" ? new TableColumn(new Text(name)) : new TableColumn(new Text(name)).RightAligned());
            foreach (var r in report.Tensors.Where(r => r.Signed is not null))
            {
                var x = r.Signed!;
                sgn.AddTextRow(r.Layer, r.Kind, F(x.Energy, "0.00"), F(x.Mean, "0.0000"), F(x.StdDev, "0.0000"), F(x.Skewness, "0.0000"), F(x.Kurtosis, "0.0000"),
                    F(x.HNormPercent, "0.00") + "%", F(x.Gain, "0.0000"), F(x.L2Distance, "0.0000"), F(x.CosSim, "0.0000"), F(x.Pearson, "0.0000"));
            }
            console.Write(sgn);
        }

        var l = new Table().Title($"weighted average statistics per layer ({report.Layers.Count} layers)");
        var cols = new List<string> { "Layer", "μΣ(Act²)", "μZD", "μCosSim" };
        if (report.HasInSum) cols.AddRange(["CosSim", "L2", "Pearson", "gain"]);
        if (report.HasLayerImportance) cols.AddRange(["LIM", "⟨cos⟩ layer", "⟨cos⟩ attn", "⟨cos⟩ ffn"]);
        foreach (var c in cols) l.AddColumn(new TableColumn(new Text(c)).RightAligned());
        foreach (var r in report.Layers)
        {
            var cells = new List<string> { r.Layer.ToString(CultureInfo.InvariantCulture), F(r.WeightedSumSq, "0.00"), F(r.WeightedZdPercent, "0.0000") + "%", F(r.WeightedCosSim, "0.0000") };
            if (report.HasInSum) cells.AddRange([F(r.CosSim ?? double.NaN, "0.0000"), F(r.L2Distance ?? double.NaN, "0.0000"), F(r.Pearson ?? double.NaN, "0.0000"), F(r.Gain ?? double.NaN, "0.0000")]);
            if (report.HasLayerImportance) cells.AddRange([F(r.Lim ?? double.NaN, "0.0000"), F(r.LayerSimilarity ?? double.NaN, "0.0000"), F(r.AttentionSimilarity ?? double.NaN, "0.0000"), F(r.FfnSimilarity ?? double.NaN, "0.0000")]);
            l.AddTextRow(cells.ToArray());
        }
        console.Write(l);
        if (report.HasLayerImportance)
        {
            var ranked = report.Layers.Where(r => r.Lim is not null).OrderByDescending(r => r.Lim).Select(r => r.Layer.ToString(CultureInfo.InvariantCulture)).ToList();
            if (ranked.Count > 0) console.WriteLine($"most important layers by LIM (most first): {string.Join(", ", ranked)}");
            var bySim = report.Layers.Where(r => r.LayerSimilarity is not null).OrderBy(r => Math.Abs(r.LayerSimilarity!.Value)).Select(r => r.Layer.ToString(CultureInfo.InvariantCulture)).ToList();
            if (bySim.Count > 0) console.WriteLine($"most important layers by ⟨cos⟩ (least similar first): {string.Join(", ", bySim)}");
        }
    }

    private static string Num(double v) => double.IsNaN(v) ? "" : v.ToString("R", CultureInfo.InvariantCulture);

    private static string Csv(ImatrixStatisticsReport report)
    {
        var sb = new StringBuilder();
        sb.Append("name,layer,tensor,sum_sq,min,max,mean,stddev,active_percent,n,entropy,entropy_norm_percent,zd_percent,cossim,")
          .Append("energy,signed_mean,signed_stddev,skewness,kurtosis,h_norm_percent,gain,l2_distance,signed_cossim,pearson,covariance\n");
        foreach (var t in report.Tensors)
        {
            var x = t.Signed;
            sb.AppendJoin(',', [Quote(t.Name), Quote(t.Layer), Quote(t.Kind), Num(t.SumSq), Num(t.Min), Num(t.Max), Num(t.Mean), Num(t.StdDev), Num(t.ActivePercent),
                t.Elements.ToString(CultureInfo.InvariantCulture), Num(t.Entropy), Num(t.EntropyPercent), Num(t.ZdPercent), Num(t.CosSim),
                Num(x?.Energy ?? double.NaN), Num(x?.Mean ?? double.NaN), Num(x?.StdDev ?? double.NaN), Num(x?.Skewness ?? double.NaN), Num(x?.Kurtosis ?? double.NaN),
                Num(x?.HNormPercent ?? double.NaN), Num(x?.Gain ?? double.NaN), Num(x?.L2Distance ?? double.NaN), Num(x?.CosSim ?? double.NaN),
                Num(x?.Pearson ?? double.NaN), Num(x?.Covariance ?? double.NaN)]).Append('\n');
        }
        sb.Append('\n').Append("layer,weighted_sum_sq,weighted_zd_percent,weighted_cossim,cossim,l2_distance,pearson,covariance,gain,lim,layer_similarity,attn_similarity,ffn_similarity\n");
        foreach (var l in report.Layers)
            sb.AppendJoin(',', [l.Layer.ToString(CultureInfo.InvariantCulture), Num(l.WeightedSumSq), Num(l.WeightedZdPercent), Num(l.WeightedCosSim),
                Num(l.CosSim ?? double.NaN), Num(l.L2Distance ?? double.NaN), Num(l.Pearson ?? double.NaN), Num(l.Covariance ?? double.NaN), Num(l.Gain ?? double.NaN),
                Num(l.Lim ?? double.NaN), Num(l.LayerSimilarity ?? double.NaN), Num(l.AttentionSimilarity ?? double.NaN), Num(l.FfnSimilarity ?? double.NaN)]).Append('\n');
        return sb.ToString();
    }

    private static string Quote(string s) => s.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    private static string Json(string path, ImatrixFile file, ImatrixStatisticsReport report)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            void N(string name, double? v)
            {
                if (v is double d && double.IsFinite(d)) w.WriteNumber(name, d);
                else w.WriteNull(name);
            }
            w.WriteStartObject();
            w.WriteString("file", path);
            w.WriteString("format", file.Format == ImatrixFormat.Gguf ? "gguf" : "dat");
            w.WriteStartArray("datasets");
            foreach (var d in file.Datasets) w.WriteStringValue(d);
            w.WriteEndArray();
            w.WriteNumber("chunk_count", file.ChunkCount);
            w.WriteNumber("chunk_size", file.ChunkSize);
            w.WriteStartArray("tensors");
            foreach (var t in report.Tensors)
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("layer", t.Layer);
                w.WriteString("tensor", t.Kind);
                N("sum_sq", t.SumSq); N("min", t.Min); N("max", t.Max); N("mean", t.Mean); N("stddev", t.StdDev);
                N("active_percent", t.ActivePercent); w.WriteNumber("n", t.Elements); N("entropy", t.Entropy); N("entropy_norm_percent", t.EntropyPercent);
                N("zd_percent", t.ZdPercent); N("cossim", t.CosSim);
                if (t.Signed is { } x)
                {
                    w.WriteStartObject("activation");
                    w.WriteBoolean("from_in_sum", x.FromInSum);
                    N("energy", x.Energy); N("mean", x.Mean); N("stddev", x.StdDev); N("skewness", x.Skewness); N("kurtosis", x.Kurtosis);
                    N("entropy", x.Entropy); N("h_norm_percent", x.HNormPercent); N("gain", x.Gain); N("l2_distance", x.L2Distance);
                    N("cossim", x.CosSim); N("pearson", x.Pearson); N("covariance", x.Covariance);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("layers");
            foreach (var l in report.Layers)
            {
                w.WriteStartObject();
                w.WriteNumber("layer", l.Layer);
                N("weighted_sum_sq", l.WeightedSumSq); N("weighted_zd_percent", l.WeightedZdPercent); N("weighted_cossim", l.WeightedCosSim);
                N("cossim", l.CosSim); N("l2_distance", l.L2Distance); N("pearson", l.Pearson); N("covariance", l.Covariance); N("gain", l.Gain);
                N("lim", l.Lim); N("layer_similarity", l.LayerSimilarity); N("attn_similarity", l.AttentionSimilarity); N("ffn_similarity", l.FfnSimilarity);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }
}
