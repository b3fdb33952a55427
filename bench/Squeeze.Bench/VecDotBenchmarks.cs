using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Squeeze.Numerics;
using Squeeze.Oracle;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// Single-threaded dot products of one 4096-element weight row with one activation row of its vec-dot type:
/// ggml-cpu's <c>vec_dot</c> beside Squeeze's kernel at each SIMD level (same bytes, same result bits; levels the
/// CPU lacks run at the best it has).
/// Run: <c>dotnet run -c Release --project bench/Squeeze.Bench -- --filter '*VecDotBenchmarks*'</c>.
/// </summary>
[Config(typeof(VecDotConfig))]
public unsafe class VecDotBenchmarks
{
    private const int N = 4096;

    private byte[] _x = [];
    private byte[] _y = [];
    private IQuantKernel _kernel = null!;
    private GgmlTypeTraitsCpuNative* _traits;

    [Params(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
        GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ2_XXS,
        GgmlType.IQ2_XS, GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ1_S, GgmlType.IQ1_M, GgmlType.IQ4_NL,
        GgmlType.IQ4_XS, GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4, GgmlType.NVFP4, GgmlType.Q1_0, GgmlType.Q2_0)]
    public GgmlType Type { get; set; }

    /// <summary>The level Squeeze runs at (ggml always runs its AVX-512 build).</summary>
    [Params(SimdLevel.Scalar, SimdLevel.Avx2, SimdLevel.Avx512)]
    public SimdLevel Level { get; set; }

    private IDisposable? _level;

    [GlobalSetup]
    public void Setup()
    {
        OracleLibrary.EnsureLoaded();
        _level = Simd.IsSupported(Level) ? Simd.Override(Level) : null;
        _kernel = QuantKernels.Get(Type);
        _traits = Native.ggml_get_type_traits_cpu((int)Type);
        var rng = new Random(2);
        var w = new float[N];
        var a = new float[N];
        for (int i = 0; i < N; i++)
        {
            w[i] = (float)(rng.NextDouble() * 2 - 1);
            a[i] = (float)(rng.NextDouble() * 2 - 1);
        }
        _x = GC.AllocateArray<byte>((int)GgmlTypes.RowSize(Type, N), pinned: true);
        var importance = new float[N];
        Array.Fill(importance, 1f); // the i-quants need importance weights; uniform ones leave the others unchanged in kind
        QuantKernels.Quantize(Type, w, _x, 1, N, importance);
        var y = Squeeze.Oracle.Oracle.FromFloat(_kernel.VecDotType, a);
        _y = GC.AllocateArray<byte>(y.Length, pinned: true);
        y.CopyTo(_y, 0);
    }

    [GlobalCleanup]
    public void Cleanup() => _level?.Dispose();

    [Benchmark(Baseline = true)]
    public float Ggml()
    {
        float s;
        fixed (byte* px = _x)
        fixed (byte* py = _y)
            _traits->VecDot(N, &s, 0, px, 0, py, 0, 1);
        return s;
    }

    [Benchmark]
    public float SqueezeKernel() => _kernel.VecDot(_x, _y, N);

    private sealed class VecDotConfig : ManualConfig
    {
        public VecDotConfig() => AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
    }
}
