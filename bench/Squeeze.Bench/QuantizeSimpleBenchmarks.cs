using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Squeeze.Oracle;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// Single-threaded quantize throughput of the float, ternary, 1/2-bit and FP4 formats: Squeeze's
/// <see cref="QuantKernels.Quantize"/> beside ggml's <c>ggml_quantize_chunk</c> on the same rows, into preallocated
/// buffers. Run: <c>dotnet run -c Release --project bench/Squeeze.Bench -- --filter '*QuantizeSimple*'</c>.
/// In-process short runs: the oracle's native libraries are loaded once, and the numbers are for comparison, not records.
/// </summary>
[Config(typeof(QuantizeSimpleConfig))]
public unsafe class QuantizeSimpleBenchmarks
{
    private const int Rows = 16, RowLength = 4096;

    private float[] _x = [];
    private float[] _w = [];
    private byte[] _dst = [];

    [Params(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q1_0, GgmlType.Q2_0,
        GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4, GgmlType.NVFP4)]
    public GgmlType Type { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        OracleLibrary.EnsureLoaded();
        var rng = new Random(1);
        _x = GC.AllocateArray<float>(Rows * RowLength, pinned: true);
        for (int i = 0; i < _x.Length; i++)
            _x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        _w = GC.AllocateArray<float>(RowLength, pinned: true);
        for (int i = 0; i < _w.Length; i++) _w[i] = (float)Math.Exp(2 * (rng.NextDouble() - 0.5));
        _dst = GC.AllocateArray<byte>((int)GgmlTypes.RowSize(Type, RowLength) * Rows, pinned: true);
    }

    [Benchmark(Baseline = true)]
    public long Ggml()
    {
        fixed (float* x = _x)
        fixed (float* w = _w)
        fixed (byte* d = _dst)
            return (long)Native.ggml_quantize_chunk((int)Type, x, d, 0, Rows, RowLength, w);
    }

    [Benchmark]
    public long Squeeze() => QuantKernels.Quantize(Type, _x, _dst, Rows, RowLength, _w);

    private sealed class QuantizeSimpleConfig : ManualConfig
    {
        public QuantizeSimpleConfig()
        {
            AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
            AddColumn(new ThroughputColumn());
        }
    }

    /// <summary>Million input floats quantized per second (from the mean time of one call).</summary>
    private sealed class ThroughputColumn : IColumn
    {
        public string Id => "Mfloat/s";
        public string ColumnName => "Mfloat/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Million floats quantized per second, single thread";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (stats is null) return "-";
            return (Rows * RowLength / stats.Mean * 1e3).ToString("0.0", CultureInfo.InvariantCulture);
        }
    }
}
