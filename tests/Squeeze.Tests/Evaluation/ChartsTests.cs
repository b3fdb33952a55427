using Squeeze.Evaluation;
using Xunit;

namespace Squeeze.Tests.Evaluation;

public sealed class ChartsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-charts-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static void AssertPng(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 1000, $"{path} has only {bytes.Length} bytes");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
    }

    [Fact]
    public void Heatmap_writes_a_png()
    {
        var values = new double[6, 3];
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 3; c++) values[r, c] = r * c;
        values[2, 1] = double.NaN;
        var path = Path.Combine(_dir, "heat.png");
        Charts.Heatmap(path, values, Enumerable.Range(0, 6).Select(i => $"{i}").ToArray(), ["attn_k", "attn_v", "ffn_down"], "Σ(Act²)");
        AssertPng(path);
    }

    [Fact]
    public void Heatmap_refuses_labels_that_do_not_fit()
    {
        Assert.Throws<ArgumentException>(() => Charts.Heatmap(Path.Combine(_dir, "x.png"), new double[2, 2], ["0"], ["a", "b"], "t"));
    }

    [Fact]
    public void Scatter_writes_a_png_with_log_axis()
    {
        var path = Path.Combine(_dir, "front.png");
        Charts.Scatter(path,
            [new ChartSeries("presets", [2.6, 3.5, 4.8], [0.4, 0.1, 0.02], ["Q2_K", "Q3_K_M", "Q4_K_M"]),
             new ChartSeries("planned", [2.6, 3.5, 4.8], [0.3, 0.07, 0.015])],
            "KLD against size", "bits per weight", "mean KLD", logY: true);
        AssertPng(path);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp*"));
    }
}
