using System.Diagnostics;
using System.Globalization;
using Squeeze.Gguf;
using Squeeze.Models;
using Squeeze.Quants;

namespace Squeeze.Bench;

/// <summary>
/// One thread's matrix-product throughput per weight type: one <c>VecDot</c> per product against the tiled
/// <c>VecDotTile</c>, for the types llama.cpp hands to tinyBLAS (F32, F16, BF16, IQ4_NL) Squeeze's tinyBLAS-order
/// kernel, which batches run instead (weight and activation widening included), and for the types llama.cpp repacks the
/// repacked order (<see cref="Repack"/>) for the same batch and for one activation row (gemv), in multiply-adds per second
/// of this thread's CPU time (steady on a loaded machine):
/// <c>squeeze-bench gemm [--types f16,q8_0,q4_K,q6_K] [-k 1024] [-m 256] [-n 64]</c> (default: every type with a tile;
/// <c>SQUEEZE_SIMD=avx2</c> measures the AVX2 level on an AVX-512 machine).
/// </summary>
internal static unsafe class GemmSpeed
{
    public static int Run(string[] args)
    {
        var names = "f32,f16,bf16,q8_0,q4_0,q4_1,q5_0,q5_1,q2_K,q3_K,q4_K,q5_K,q6_K,iq4_nl,iq4_xs,iq3_s,iq3_xxs,iq2_xxs,iq2_xs,iq2_s,iq1_s,iq1_m";
        int k = 1024, m = 256, n = 64;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--types": names = args[++i]; break;
                case "-k": k = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-m": m = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-n": n = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }
        Console.WriteLine($"{m} weight rows x {n} activation rows x {k} columns, one thread; GMAC/s of thread CPU time");
        Console.WriteLine("| type | vec_dot | tile | speed-up | tinyBLAS order | vs tile | repack | tile, 1 row | repack, 1 row |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var name in names.Split(','))
        {
            if (!GgmlTypes.TryParse(name, out var type)) throw new ArgumentException($"unknown type {name}");
            var kernel = QuantKernels.Get(type);
            var act = QuantKernels.Get(kernel.VecDotType);
            int xRow = (int)GgmlTypes.RowSize(type, k), yRow = (int)GgmlTypes.RowSize(kernel.VecDotType, k);
            var rng = new Random(1);
            var f = new float[k];
            var x = new byte[m * xRow];
            var y = new byte[n * yRow];
            var imp = new float[k];
            Array.Fill(imp, 1f);
            for (int r = 0; r < m; r++) { Fill(f, rng); kernel.QuantizeRow(f, x.AsSpan(r * xRow, xRow), kernel.RequiresImportance ? imp : default); }
            for (int t = 0; t < n; t++) { Fill(f, rng); act.QuantizeActivationRow(f, y.AsSpan(t * yRow, yRow)); }
            var s = new float[m * n];
            double vec = Measure(() =>
            {
                for (int t = 0; t < n; t++)
                    for (int r = 0; r < m; r++)
                        s[t * m + r] = kernel.VecDot(x.AsSpan(r * xRow, xRow), y.AsSpan(t * yRow, yRow), k);
            }, (double)m * n * k);
            double tile = Measure(() => kernel.VecDotTile(x, xRow, m, y, yRow, n, k, s, m), (double)m * n * k);
            string tiny = "", ratio = "";
            if (TinyBlas.Serves(type, m, k, n))
            {
                var w = new Weight(new GgufTensorInfo("w.weight", type, [k, m], 0), TensorRole.AttnQ, 0, x);
                var tb = new TinyBlas();
                double t = Measure(() => tb.Run(w, y, yRow, n, s, threads: 1), (double)m * n * k);
                tiny = t.ToString("0.00", CultureInfo.InvariantCulture);
                ratio = (t / tile).ToString("0.00", CultureInfo.InvariantCulture) + "x";
            }
            double tile1 = Measure(() => kernel.VecDotTile(x, xRow, m, y, yRow, 1, k, s, m), (double)m * k);
            string repack = "", repack1 = "";
            if (Repack.Applies(type, m))
            {
                // The repacked kernels take Q8_0 or Q8_K activations, the same as the vec_dot's for these types.
                fixed (byte* px = x)
                fixed (byte* py = y)
                fixed (float* ps = s)
                {
                    byte* wx = px, wy = py;
                    float* ws = ps;
                    repack = string.Create(CultureInfo.InvariantCulture, $"{Measure(() => Repack.Multiply(type, wx, xRow, m, wy, yRow, 0, n, n - n % 4, k, ws, m), (double)m * n * k):0.00}");
                    repack1 = string.Create(CultureInfo.InvariantCulture, $"{Measure(() => Repack.Multiply(type, wx, xRow, m, wy, yRow, 0, 1, 0, k, ws, m), (double)m * k):0.00}");
                }
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {type.Name()} | {vec:0.00} | {tile:0.00} | {tile / vec:0.00}x | {tiny} | {ratio} | {repack} | {tile1:0.00} | {repack1} |"));
        }
        return 0;
    }

    private static double Measure(Action run, double macs)
    {
        run();
        double best = 0;
        for (int rep = 0; rep < 5; rep++)
        {
            var t0 = ThreadCpu();
            int iters = 0;
            TimeSpan used;
            do { run(); iters++; used = ThreadCpu() - t0; } while (used.TotalMilliseconds < 200);
            best = Math.Max(best, macs * iters / used.TotalSeconds / 1e9);
        }
        return best;
    }

    private static TimeSpan ThreadCpu()
    {
        // The process's CPU time: this benchmark runs on one thread, and background threads are idle.
        return Process.GetCurrentProcess().TotalProcessorTime;
    }

    private static void Fill(float[] f, Random rng)
    {
        for (int i = 0; i < f.Length; i++)
            f[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
    }
}
