using Squeeze.IO;

namespace Squeeze.Evaluation;

/// <summary>One named series of points for <see cref="Charts.Scatter"/>; <paramref name="PointLabels"/> may be empty.</summary>
public sealed record ChartSeries(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y, IReadOnlyList<string>? PointLabels = null);

/// <summary>
/// PNG charts for reports (ScottPlot): a heatmap of a statistic over layers x tensor kinds, and scatter/line fronts
/// such as KL divergence against file size. Files are written atomically.
/// </summary>
public static class Charts
{
    /// <summary>
    /// Draws <paramref name="values"/> (rows x columns; NaN = no value) as a heatmap with a colour bar, row labels on the
    /// vertical axis (e.g. layers) and column labels on the horizontal axis (e.g. tensor kinds).
    /// </summary>
    public static void Heatmap(string path, double[,] values, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels,
        string title, string colorBarLabel = "", int width = 900, int height = 700)
    {
        int rows = values.GetLength(0), cols = values.GetLength(1);
        if (rowLabels.Count != rows || columnLabels.Count != cols)
            throw new ArgumentException($"labels ({rowLabels.Count} x {columnLabels.Count}) do not fit a {rows} x {cols} heatmap");
        var plot = new ScottPlot.Plot();
        // ScottPlot draws row 0 at the top; flip so that layer 0 is at the bottom, as the axis ticks say.
        var flipped = new double[rows, cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) flipped[rows - 1 - r, c] = values[r, c];
        var heatmap = plot.Add.Heatmap(flipped);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        var bar = plot.Add.ColorBar(heatmap);
        bar.Label = colorBarLabel;
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, cols).Select(i => (double)i).ToArray(), columnLabels.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = ScottPlot.Alignment.MiddleLeft;
        // Rotated labels hang below the axis: reserve room for the longest (about 7 px per character at 45°).
        plot.Axes.Bottom.MinimumSize = 20 + 7 * columnLabels.Select(l => l.Length).DefaultIfEmpty(0).Max();
        int step = Math.Max(1, rows / 40);
        var ticks = Enumerable.Range(0, rows).Where(r => r % step == 0).ToArray();
        plot.Axes.Left.SetTicks(ticks.Select(r => (double)r).ToArray(), ticks.Select(r => rowLabels[r]).ToArray());
        plot.Title(title);
        Save(plot, path, width, height);
    }

    /// <summary>Draws each series as markers joined by a line, with optional point labels and a legend.</summary>
    public static void Scatter(string path, IReadOnlyList<ChartSeries> series, string title, string xLabel, string yLabel,
        bool logY = false, int width = 900, int height = 600)
    {
        var plot = new ScottPlot.Plot();
        foreach (var s in series)
        {
            if (s.X.Count != s.Y.Count) throw new ArgumentException($"series {s.Name}: {s.X.Count} x values for {s.Y.Count} y values");
            var ys = s.Y.Select(y => logY ? Math.Log10(Math.Max(y, 1e-12)) : y).ToArray();
            var scatter = plot.Add.Scatter(s.X.ToArray(), ys);
            scatter.LegendText = s.Name;
            scatter.MarkerSize = 7;
            if (s.PointLabels is { Count: > 0 } labels)
                for (int i = 0; i < Math.Min(labels.Count, ys.Length); i++)
                {
                    var text = plot.Add.Text(labels[i], s.X[i], ys[i]);
                    text.LabelFontSize = 10;
                    text.LabelFontColor = scatter.Color;
                }
        }
        if (logY)
        {
            var ticks = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = y => $"{Math.Pow(10, y):G3}" };
            plot.Axes.Left.TickGenerator = ticks;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(logY ? yLabel + " (log scale)" : yLabel);
        // Upper right: these charts fall from left to right (error against size), so that corner is empty.
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        Save(plot, path, width, height);
    }

    private static void Save(ScottPlot.Plot plot, string path, int width, int height)
    {
        var png = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
        AtomicFile.Write(path, stream => stream.Write(png));
    }
}
