using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// Single-threaded quantization of the same 4096 x 16 Gaussian tensor by Squeeze (<see cref="QuantKernels.Quantize"/>)
/// and by ggml (<c>ggml_quantize_chunk</c> through the oracle), with and without importance weights. Each
/// operation is one float, so the reported mean is nanoseconds per float: Mfloat/s = 1000 / mean.
/// Run: <c>dotnet run -c Release --project bench/Squeeze.Bench -- --filter *QuantizeBenchmarks*</c>.
/// </summary>
[Config(typeof(QuickConfig))]
public class QuantizeBenchmarks
{
    private const int NPerRow = 4096;
    private const int NRows = 16;
    private const int Floats = NPerRow * NRows;

    /// <summary>A short job: these numbers compare two implementations, they are not for publication.</summary>
    private sealed class QuickConfig : ManualConfig
    {
        // In-process: the oracle's native libraries are resolved beside this assembly, which a generated
        // out-of-process project would not copy.
        public QuickConfig() => AddJob(Job.ShortRun.WithWarmupCount(2).WithIterationCount(5).WithToolchain(InProcessEmitToolchain.Instance));
    }

    [Params(GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ2_XXS, GgmlType.IQ2_XS,
        GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ1_S, GgmlType.IQ1_M, GgmlType.IQ4_NL, GgmlType.IQ4_XS,
        GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4, GgmlType.NVFP4, GgmlType.Q1_0, GgmlType.Q2_0)]
    public GgmlType Type { get; set; }

    /// <summary>Importance weights on or off; types that need them (IQ2_XXS, IQ2_XS, IQ1_S) always get them.</summary>
    [Params(false, true)]
    public bool Importance { get; set; }

    private float[] _src = [];
    private float[] _importance = [];
    private byte[] _dst = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        _src = new float[Floats];
        for (int i = 0; i < _src.Length; i++) _src[i] = Gaussian(rng);
        _importance = new float[NPerRow];
        for (int i = 0; i < _importance.Length; i++) _importance[i] = MathF.Exp(2f * Gaussian(rng));
        _dst = new byte[GgmlTypes.RowSize(Type, NPerRow) * NRows];
        Oracle.OracleLibrary.EnsureLoaded();
    }

    private ReadOnlySpan<float> Weights => Importance || QuantKernels.Get(Type).RequiresImportance ? _importance : default;

    [Benchmark(Baseline = true, OperationsPerInvoke = Floats)]
    public void Ggml() => Oracle.Oracle.Quantize(Type, _src, _dst, NRows, NPerRow, Weights);

    [Benchmark(OperationsPerInvoke = Floats)]
    public long Squeeze() => QuantKernels.Quantize(Type, _src, _dst, NRows, NPerRow, Weights);

    private static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}
