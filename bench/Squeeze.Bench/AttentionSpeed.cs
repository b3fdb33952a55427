using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using Squeeze.Models;
using Squeeze.Numerics;

namespace Squeeze.Bench;

/// <summary>
/// Time spent in attention for a Qwen3-0.6B-shaped model (28 layers, 16 heads, 8 key/value heads, head size 128):
/// <c>squeeze-bench attention [-p 512] [-n 128] [-t N] [-r 3]</c>. Prints milliseconds for a whole pp and tg run (all
/// layers) with Squeeze's attention and with a plain one (fp16 queries, f32 dots, softmax, f32 values, scalar widening:
/// Squeeze's attention before it matched ggml), to set beside the totals of <c>speed</c>.
/// </summary>
internal static class AttentionSpeed
{
    private const int Layers = 28, Heads = 16, KvHeads = 8, HeadDim = 128;

    public static int Run(string[] args)
    {
        int prompt = 512, gen = 128, threads = Environment.ProcessorCount, reps = 3;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-p": prompt = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-n": gen = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-t": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "-r": reps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }
        int kvDim = KvHeads * HeadDim, qDim = Heads * HeadDim;
        var rng = new Random(1);
        var cache = new KvCache(1, kvDim, prompt + gen);
        var k = new float[kvDim];
        var v = new float[kvDim];
        var batch = new BatchToken[prompt];
        for (int i = 0; i < prompt; i++)
        {
            for (int j = 0; j < kvDim; j++) { k[j] = (float)rng.NextDouble() * 2 - 1; v[j] = (float)rng.NextDouble() * 2 - 1; }
            cache.Store(0, cache.Allocate(0, i), k, v);
            batch[i] = new BatchToken(0, i);
        }
        var q = new float[prompt * qDim];
        for (int j = 0; j < q.Length; j++) q[j] = (float)rng.NextDouble() * 2 - 1;
        var output = new float[prompt * qDim];
        var attention = new Attention(Heads, KvHeads, HeadDim, threads);

        // Generation from an empty cache: token i sees cells 0..i (the cache is trimmed to them).
        var tgCache = new KvCache(1, kvDim, gen);
        void Generate(Action<KvCache, BatchToken[]> step)
        {
            tgCache.Clear();
            for (int i = 0; i < gen; i++)
            {
                for (int j = 0; j < kvDim; j++) { k[j] = Fp16.ToFloat(cache.KeyData(0)[i * kvDim + j]); v[j] = Fp16.ToFloat(cache.ValueData(0)[i * kvDim + j]); }
                tgCache.Store(0, tgCache.Allocate(0, i), k, v);
                step(tgCache, [new BatchToken(0, i)]);
            }
        }

        if (Environment.GetEnvironmentVariable("SQUEEZE_ATTN_PARTS") == "1")
        {
            var small = new KvCache(1, kvDim, 128);
            for (int i = 0; i < 128; i++) small.Store(0, small.Allocate(0, i), k, v);
            var one = new[] { new BatchToken(0, 127) };
            var wide = new float[128 * kvDim];
            double conv = Best(reps, () => { for (int r = 0; r < 100; r++) System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, Half>(small.KeyData(0).AsSpan()), wide); });
            double run = Best(reps, () => { for (int r = 0; r < 100; r++) attention.Run(small, 0, one, q, output); });
            double plain = Best(reps, () => { for (int r = 0; r < 100; r++) Plain(small, one, q, output, threads); });
            Console.WriteLine($"100 x: convert 128 cells of keys {conv:0.0} ms; Run one token over 128 cells {run:0.0} ms; plain {plain:0.0} ms");
        }
        Console.WriteLine($"attention of a Qwen3-0.6B shape, {Layers} layers, threads {threads}, SIMD {Simd.Level}: milliseconds per run (best of {reps})");
        Console.WriteLine();
        // ggml's own kernel on the same cache (one graph per layer; the copy into ggml tensors is included).
        int cells = cache.PaddedLength;
        var kBits = new ushort[cells * kvDim];
        var vBits = new ushort[cells * kvDim];
        cache.KeyData(0).AsSpan(0, prompt * kvDim).CopyTo(kBits);
        cache.ValueData(0).AsSpan(0, prompt * kvDim).CopyTo(vBits);
        var mask = new ushort[prompt * cells];
        for (int t = 0; t < prompt; t++)
            for (int c = 0; c < cells; c++) mask[t * cells + c] = c <= t ? (ushort)0 : (ushort)0xFC00;
        double ppGgml = Best(reps, () => Squeeze.Oracle.Oracle.FlashAttention(q, kBits, vBits, mask, prompt, cells, Heads, KvHeads, HeadDim, 1f / MathF.Sqrt(HeadDim), threads)) * Layers;
        Console.WriteLine("| run | squeeze (ggml arithmetic) | plain (before) | ggml flash_attn_ext |");
        Console.WriteLine("|---|---:|---:|---:|");
        double ppNew = Best(reps, () => attention.Run(cache, 0, batch, q, output)) * Layers;
        double ppOld = reps > 0 && prompt <= 128 ? Best(reps, () => Plain(cache, batch, q, output, threads)) * Layers : double.NaN;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| pp{prompt} | {ppNew:0.0} | {ppOld:0.0} | {ppGgml:0.0} |"));
        double store = Best(reps, () => Generate((_, _) => { }));
        double tgNew = (Best(reps, () => Generate((c, b) => attention.Run(c, 0, b, q, output))) - store) * Layers;
        double tgOld = (Best(reps, () => Generate((c, b) => Plain(c, b, q, output, threads))) - store) * Layers;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| tg{gen} | {tgNew:0.0} | {tgOld:0.0} |"));
        return 0;
    }

    private static double Best(int reps, Action run)
    {
        run();
        double best = double.MaxValue;
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            run();
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
        }
        return best;
    }

    /// <summary>Squeeze's attention before this change, for comparison.</summary>
    private static void Plain(KvCache cache, BatchToken[] tokens, float[] q, float[] attn, int threads)
    {
        const int group = Heads / KvHeads;
        int qDim = Heads * HeadDim, kvDim = KvHeads * HeadDim;
        float scale = 1f / MathF.Sqrt(HeadDim);
        Workers.For(tokens.Length * Heads, threads, (start, end) =>
        {
            var cells = new int[cache.Capacity];
            var scores = new float[cache.Capacity];
            var key = new float[HeadDim];
            var query = new float[HeadDim];
            for (int job = start; job < end; job++)
            {
                int t = job / Heads, hd = job % Heads, kvHead = hd / group;
                int visible = 0;
                for (int c = 0; c < cache.Capacity; c++)
                    if (cache.CellSequences[c] == tokens[t].Sequence && cache.CellPositions[c] <= tokens[t].Position) cells[visible++] = c;
                for (int d = 0; d < HeadDim; d++) query[d] = Fp16.Round(q[t * qDim + hd * HeadDim + d]);
                for (int c = 0; c < visible; c++)
                {
                    var ks = cache.KeyData(0).AsSpan(cells[c] * kvDim + kvHead * HeadDim, HeadDim);
                    for (int d = 0; d < HeadDim; d++) key[d] = Fp16.ToFloat(ks[d]);
                    scores[c] = TensorPrimitives.Dot(query, key) * scale;
                }
                var p = scores.AsSpan(0, visible);
                VectorOps.Softmax(p);
                var output = attn.AsSpan(t * qDim + hd * HeadDim, HeadDim);
                output.Clear();
                for (int c = 0; c < visible; c++)
                {
                    var vs = cache.ValueData(0).AsSpan(cells[c] * kvDim + kvHead * HeadDim, HeadDim);
                    float w = p[c];
                    for (int d = 0; d < HeadDim; d++) output[d] += w * Fp16.ToFloat(vs[d]);
                }
            }
        });
    }
}
