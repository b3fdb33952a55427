using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// Quantizing with importance weights, single thread: Squeeze's <see cref="QuantKernels.Quantize"/> against
/// ggml's <c>ggml_quantize_chunk</c> (the oracle) on the same rows, for IQ3_XXS, IQ3_S, IQ4_NL and IQ4_XS.
/// The Mfloat/s column is input floats per second. Run: <c>dotnet run -c Release --project bench/Squeeze.Bench -- --filter *QuantizeIq3*</c>.
/// </summary>
[Config(typeof(Config))]
public class QuantizeIq3Benchmarks
{
    private const int Rows = 8;
    private const int PerRow = 4096;

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.ShortRun.WithWarmupCount(2).WithIterationCount(5));
            AddColumn(new FloatsPerSecondColumn(Rows * PerRow));
        }
    }

    [Params(GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ4_NL, GgmlType.IQ4_XS)]
    public GgmlType Type { get; set; }

    private float[] _x = [];
    private float[] _w = [];
    private byte[] _dst = [];

    [GlobalSetup]
    public void Setup()
    {
        Oracle.OracleLibrary.EnsureLoaded();
        var rng = new Random(1234);
        _x = new float[Rows * PerRow];
        for (int i = 0; i < _x.Length; i++) _x[i] = Gaussian(rng) * (rng.NextDouble() < 0.01 ? 8f : 1f);
        _w = new float[PerRow];
        for (int i = 0; i < _w.Length; i++) _w[i] = MathF.Exp(2f * Gaussian(rng));
        _dst = new byte[GgmlTypes.RowSize(Type, PerRow) * Rows];
        // Both sides must agree before their speeds mean anything.
        QuantKernels.Quantize(Type, _x, _dst, Rows, PerRow, _w);
        if (!_dst.AsSpan().SequenceEqual(Oracle.Oracle.Quantize(Type, _x, Rows, PerRow, _w)))
            throw new InvalidOperationException($"{Type}: Squeeze and ggml disagree");
    }

    [Benchmark(Baseline = true)]
    public byte[] Ggml() => Oracle.Oracle.Quantize(Type, _x, Rows, PerRow, _w);

    [Benchmark]
    public long Squeeze() => QuantKernels.Quantize(Type, _x, _dst, Rows, PerRow, _w);

    private static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }

    /// <summary>Input floats quantized per second, in millions, from the mean time of one call.</summary>
    private sealed class FloatsPerSecondColumn(int floatsPerCall) : IColumn
    {
        public string Id => nameof(FloatsPerSecondColumn);
        public string ColumnName => "Mfloat/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Millions of input floats quantized per second (mean)";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is not { } stats) return "-";
            return (floatsPerCall / (stats.Mean / 1e9) / 1e6).ToString("F2");
        }
    }
}
