using System.Diagnostics;
using System.Globalization;
using Squeeze.Oracle;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// Quantize throughput per type, single thread, Squeeze beside ggml's <c>ggml_quantize_chunk</c> on the same rows
/// and importance weights, in one process. Prints a Markdown table of Mfloat/s and the ratio.
/// </summary>
internal static class QuantizeThroughput
{
    private const int Rows = 64, RowLength = 4096;

    public static int Run(string[] typeNames)
    {
        OracleLibrary.EnsureLoaded();
        var types = typeNames.Length > 0
            ? typeNames.Select(n => GgmlTypes.TryParse(n, out var t) ? t : throw new ArgumentException($"unknown type {n}")).ToList()
            : GgmlTypes.All.Select(t => t.Type)
                .Where(t => QuantKernels.Find(t) is not null && t is not (GgmlType.Q8_1 or GgmlType.Q8_K or GgmlType.F32))
                .ToList();
        var rng = new Random(1);
        var x = new float[Rows * RowLength];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var w = new float[RowLength];
        for (int i = 0; i < w.Length; i++) w[i] = (float)Math.Exp(2 * (rng.NextDouble() - 0.5));

        Console.WriteLine($"Quantize throughput, single thread, {Rows} rows x {RowLength} Gaussian, Mfloat/s");
        Console.WriteLine();
        Console.WriteLine("| type | squeeze | ggml | ratio | squeeze, imatrix | ggml, imatrix | ratio, imatrix |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var type in types)
        {
            var dst = new byte[GgmlTypes.RowSize(type, RowLength) * Rows];
            string plain = "| - | - | - ";
            if (!QuantKernels.Get(type).RequiresImportance)
            {
                double s = Measure(() => QuantKernels.Quantize(type, x, dst, Rows, RowLength));
                double g = Measure(() => Oracle.Oracle.Quantize(type, x, dst, Rows, RowLength));
                plain = string.Create(CultureInfo.InvariantCulture, $"| {s:0.0} | {g:0.0} | {s / g:0.00}x ");
            }
            double squeeze = Measure(() => QuantKernels.Quantize(type, x, dst, Rows, RowLength, w));
            double ggml = Measure(() => Oracle.Oracle.Quantize(type, x, dst, Rows, RowLength, w));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {type.Name()} {plain}| {squeeze:0.0} | {ggml:0.0} | {squeeze / ggml:0.00}x |"));
        }
        return 0;
    }

    /// <summary>Mfloat/s of <paramref name="action"/> over at least half a second after a warm-up.</summary>
    private static double Measure(Action action)
    {
        action();
        var sw = Stopwatch.StartNew();
        int runs = 0;
        do { action(); runs++; } while (sw.Elapsed.TotalSeconds < 0.5);
        return (double)Rows * RowLength * runs / sw.Elapsed.TotalSeconds / 1e6;
    }
}
