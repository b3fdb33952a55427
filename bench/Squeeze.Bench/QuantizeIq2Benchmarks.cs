using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// Quantization of the 1- and 2-bit i-quants, Squeeze against ggml (<c>ggml_quantize_chunk</c> through the oracle):
/// the same Gaussian rows and importance weights, one thread. The Mfloat/s column is input floats per second.
/// Run: <c>dotnet run -c Release --project bench/Squeeze.Bench -- --filter '*QuantizeIq2*'</c>.
/// </summary>
[Config(typeof(Config))]
public class QuantizeIq2Benchmarks
{
    private const int Rows = 8;
    private const int Columns = 4096;

    private float[] _x = [];
    private float[] _w = [];
    private byte[] _dst = [];

    [Params(GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S, GgmlType.IQ1_S, GgmlType.IQ1_M)]
    public GgmlType Type { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        _x = new float[Rows * Columns];
        for (int i = 0; i < _x.Length; i++) _x[i] = Gaussian(rng);
        _w = new float[Columns];
        for (int i = 0; i < _w.Length; i++) _w[i] = MathF.Exp(2f * Gaussian(rng));
        _dst = new byte[GgmlTypes.RowSize(Type, Columns) * Rows];
        // Both sides build their grid-search tables on first use; do that outside the measurement.
        Squeeze();
        Ggml();
    }

    [Benchmark]
    public long Squeeze() => QuantKernels.Quantize(Type, _x, _dst, Rows, Columns, _w);

    [Benchmark(Baseline = true)]
    public long Ggml() => Oracle.Oracle.Quantize(Type, _x, Rows, Columns, _w).Length;

    private static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.ShortRun);
            AddColumn(new ThroughputColumn());
            WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));
        }
    }

    /// <summary>Millions of input floats quantized per second.</summary>
    private sealed class ThroughputColumn : IColumn
    {
        public string Id => "Mfloat/s";
        public string ColumnName => "Mfloat/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Millions of input floats per second (mean time)";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is not { } stats) return "-";
            return (Rows * Columns / (stats.Mean / 1e9) / 1e6).ToString("F2");
        }
    }
}
