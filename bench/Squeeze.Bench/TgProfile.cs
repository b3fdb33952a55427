using System.Diagnostics;
using System.Globalization;
using Squeeze.Models;
using Squeeze.Numerics;

namespace Squeeze.Bench;

/// <summary>
/// Where one generated token's time goes, Squeeze alone: <c>squeeze-bench tg-profile -m MODEL [-n 64] [-t N]</c>.
/// Process CPU time per token of the whole forward pass, then of each weight's single-token matmul alone (all the
/// model's matrices once = one token's matmuls), so the rest (attention, norms, synchronisation) is the difference.
/// </summary>
internal static class TgProfile
{
    public static int Run(string[] args)
    {
        string? path = null;
        int gen = 64, threads = Workers.DefaultThreads;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-m": path = args[++i]; break;
                case "-n": gen = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-t": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }
        using var model = TransformerModel.Load(path ?? throw new ArgumentException("-m MODEL is required"));
        var tf = new Transformer(model, contextSize: gen + 8, threads: threads);
        void Generate() { tf.Cache.Clear(); for (int i = 0; i < gen; i++) tf.Evaluate([3 + i * 7], i); }
        Generate();
        int gc0 = GC.CollectionCount(0), gc2 = GC.CollectionCount(2);
        var pause0 = GC.GetTotalPauseDuration();
        var (wall, cpu) = Time(Generate);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"forward pass: {wall / gen:0.00} ms/token wall, {cpu / gen:0.00} ms/token CPU ({threads} threads); " +
            $"{GC.CollectionCount(0) - gc0} GCs ({GC.CollectionCount(2) - gc2} gen2), {(GC.GetTotalPauseDuration() - pause0).TotalMilliseconds / gen:0.000} ms/token paused"));

        var matmul = new MatMul(threads);
        var groups = model.Layers.SelectMany(l => l.Matrices.Select(w => (Name: w.Name.Split('.')[^2], W: w)))
            .Append((Name: "output", W: model.Output)).GroupBy(p => p.Name);
        double total = 0, totalWall = 0;
        foreach (var g in groups)
        {
            var ws = g.Select(p => p.W).ToArray();
            var xs = ws.Select(w => Enumerable.Range(0, w.Columns).Select(i => MathF.Sin(i)).ToArray()).ToArray();
            var ys = ws.Select(w => new float[w.Rows]).ToArray();
            void All() { for (int i = 0; i < ws.Length; i++) matmul.Run(ws[i], xs[i], 1, ys[i]); }
            All();
            int reps = 8;
            var (w1, c1) = Time(() => { for (int r = 0; r < reps; r++) All(); });
            long bytes = ws.Sum(w => (long)w.Rows * w.RowSize);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{g.Key,-12} x{ws.Length,-3} {bytes / 1e6,8:0.0} MB  {w1 / reps,7:0.00} ms wall  {c1 / reps,7:0.00} ms CPU  {bytes / (w1 / reps) / 1e6,6:0.0} GB/s"));
            total += c1 / reps;
            totalWall += w1 / reps;
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"all matmuls: {totalWall:0.00} ms wall, {total:0.00} ms CPU per token"));
        return 0;
    }

    private static (double WallMs, double CpuMs) Time(Action run)
    {
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        run();
        return (sw.Elapsed.TotalMilliseconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds);
    }
}
