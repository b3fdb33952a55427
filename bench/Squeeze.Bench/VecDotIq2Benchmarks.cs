using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// Dot products of 1- and 2-bit i-quant rows with Q8_K rows: Squeeze at its best SIMD level and at the scalar
/// reference, against ggml-cpu's <c>vec_dot</c> through the oracle. 64 rows of 4096, one thread.
/// </summary>
[Config(typeof(Config))]
public class VecDotIq2Benchmarks
{
    private const int Rows = 64;
    private const int Columns = 4096;

    private byte[][] _x = [];
    private byte[] _y = [];
    private IQuantKernel _kernel = null!;

    [Params(GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S, GgmlType.IQ1_S, GgmlType.IQ1_M)]
    public GgmlType Type { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(7);
        _kernel = QuantKernels.Get(Type);
        var w = new float[Columns];
        for (int i = 0; i < w.Length; i++) w[i] = 0.5f + (float)rng.NextDouble();
        _x = new byte[Rows][];
        for (int r = 0; r < Rows; r++)
        {
            var row = new float[Columns];
            for (int i = 0; i < Columns; i++) row[i] = (float)(rng.NextDouble() * 2 - 1);
            _x[r] = new byte[GgmlTypes.RowSize(Type, Columns)];
            QuantKernels.Quantize(Type, row, _x[r], 1, Columns, w);
        }
        var act = new float[Columns];
        for (int i = 0; i < Columns; i++) act[i] = (float)(rng.NextDouble() * 2 - 1);
        _y = Oracle.Oracle.FromFloat(GgmlType.Q8_K, act);
    }

    [Benchmark]
    public float Squeeze()
    {
        float s = 0;
        for (int r = 0; r < Rows; r++) s += _kernel.VecDot(_x[r], _y, Columns);
        return s;
    }

    [Benchmark]
    public float SqueezeScalar()
    {
        using var _ = Simd.Override(SimdLevel.Scalar);
        float s = 0;
        for (int r = 0; r < Rows; r++) s += _kernel.VecDot(_x[r], _y, Columns);
        return s;
    }

    [Benchmark(Baseline = true)]
    public float Ggml()
    {
        float s = 0;
        for (int r = 0; r < Rows; r++) s += Oracle.Oracle.VecDot(Type, _x[r], _y, Columns);
        return s;
    }

    private sealed class Config : ManualConfig
    {
        public Config() => AddJob(Job.ShortRun);
    }
}
