using System.Buffers.Binary;
using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Models;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Imatrix;

/// <summary>Writers, merging, the collector's rules, and resuming a collection.</summary>
public sealed class ImatrixWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-imatrix-w-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static ImatrixData Sample()
    {
        var d = new ImatrixData(100) { Dataset = "calib.txt", ChunkCount = 3 };
        d.Datasets.Add("old.txt");
        d.Entries.Add("blk.0.attn_q.weight", new ImatrixAccumulator([20f, 40f, 60f], [250], [1f, -2f, 3f]));
        // Expert 1 never routed to; all experts of the last entry unrouted.
        d.Entries.Add("blk.0.ffn_up_exps.weight", new ImatrixAccumulator([30f, 60f, 5f, 5f], [300, 0], null));
        d.Entries.Add("blk.1.ffn_up_exps.weight", new ImatrixAccumulator([0f, 0f], [0, 0], null));
        return d;
    }

    [Fact]
    public void Gguf_round_trips_with_in_sum_and_drops_unit_dimensions()
    {
        var d = Sample();
        d.WriteGguf(P("a.gguf"));
        using (var g = GgufFile.Open(P("a.gguf")))
        {
            Assert.Equal(["general.type", "imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"], g.Metadata.Select(kv => kv.Key));
            Assert.Equal(["blk.0.attn_q.weight.in_sum2", "blk.0.attn_q.weight.counts", "blk.0.attn_q.weight.in_sum",
                "blk.0.ffn_up_exps.weight.in_sum2", "blk.0.ffn_up_exps.weight.counts",
                "blk.1.ffn_up_exps.weight.in_sum2", "blk.1.ffn_up_exps.weight.counts"], g.Tensors.Select(t => t.Name));
            Assert.Equal([3L], g.FindTensor("blk.0.attn_q.weight.in_sum2")!.Shape);
            Assert.Equal([1L], g.FindTensor("blk.0.attn_q.weight.counts")!.Shape);
            Assert.Equal([2L, 2L], g.FindTensor("blk.0.ffn_up_exps.weight.in_sum2")!.Shape);
            Assert.Equal([1L, 2L], g.FindTensor("blk.0.ffn_up_exps.weight.counts")!.Shape);
        }
        var f = ImatrixFile.Read(P("a.gguf"));
        Assert.Equal(["old.txt", "calib.txt"], f.Datasets);
        Assert.Equal((3, 100, true), (f.ChunkCount, f.ChunkSize, f.HasMetadata));
        Assert.Equal([1f, -2f, 3f], f.Entries["blk.0.attn_q.weight"].InSum!);
        Assert.Equal([300L, 0L], f.Entries["blk.0.ffn_up_exps.weight"].Counts);
        // Merged into a fresh collection and written again: the same bytes.
        var again = new ImatrixData(100) { Dataset = null };
        again.Merge(f);
        again.WriteGguf(P("b.gguf"));
        var bytesA = File.ReadAllBytes(P("a.gguf"));
        Assert.Equal(bytesA, File.ReadAllBytes(P("b.gguf")));
    }

    [Fact]
    public void Legacy_is_written_as_save_imatrix_legacy()
    {
        var bytes = Sample().ToLegacyBytes();
        var f = ImatrixFile.ReadLegacy(bytes);
        // The entry with no data at all is left out.
        Assert.Equal(["blk.0.attn_q.weight", "blk.0.ffn_up_exps.weight"], f.Entries.Keys);
        // ncall = ceil(max count / chunk): 250 -> 3, 300 -> 3; values = Σx²/count·ncall; the unrouted expert stores 1·ncall.
        Assert.Equal([3L], f.Entries["blk.0.attn_q.weight"].Counts);
        Assert.Equal([20f / 250f * 3, 40f / 250f * 3, 60f / 250f * 3], f.Entries["blk.0.attn_q.weight"].Sums);
        Assert.Equal([30f / 300f * 3, 60f / 300f * 3, 3f, 3f], f.Entries["blk.0.ffn_up_exps.weight"].Sums);
        Assert.Equal(3, f.ChunkCount);
        Assert.Equal(["calib.txt"], f.Datasets);
        // Merging only: the trailer names the last merged dataset.
        var merged = Sample();
        merged.Dataset = null;
        Assert.Equal(["old.txt"], ImatrixFile.ReadLegacy(merged.ToLegacyBytes()).Datasets);
    }

    [Fact]
    public void Merging_follows_load_imatrix()
    {
        var d = new ImatrixData(10);
        // Legacy: values become data·chunk, counts ncall·chunk.
        d.Merge(ImatrixFile.ReadLegacy(ImatrixFiles.LegacyBytes([new("a.weight", 2, [1f, 3f])], 2, "x.txt")));
        Assert.Equal([10f, 30f], d.Entries["a.weight"].InSum2);
        Assert.Equal([20L], d.Entries["a.weight"].Counts);
        Assert.Equal(2, d.ChunkCount);
        // GGUF: added; a single count broadcast over experts.
        ImatrixFiles.WriteGguf(P("m.gguf"), [new("a.weight", [1f, 2f], [5f]), new("e.weight", [1f, 1f, 2f, 2f], [3f, 4f])], ["y.txt"], 1, 10);
        d.Merge(ImatrixFile.Read(P("m.gguf")));
        Assert.Equal([11f, 32f], d.Entries["a.weight"].InSum2);
        Assert.Equal([25L], d.Entries["a.weight"].Counts);
        d.Entries["e.weight"].Counts = [7];
        d.Merge(ImatrixFile.Read(P("m.gguf")));
        Assert.Equal([10L, 11L], d.Entries["e.weight"].Counts);
        Assert.Equal(["x.txt", "y.txt", "y.txt"], d.Datasets);
        Assert.Equal(3, d.ChunkCount); // 30 tokens / 10

        // Sizes must agree.
        ImatrixFiles.WriteGguf(P("bad.gguf"), [new("a.weight", [1f, 2f, 3f], [1f])], ["z"], 1, 10);
        Assert.Throws<InvalidInputException>(() => d.Merge(ImatrixFile.Read(P("bad.gguf"))));
    }

    [Fact]
    public void In_sum_is_kept_only_while_every_part_has_it()
    {
        var withSum = new ImatrixData(10);
        withSum.Entries.Add("a.weight", new ImatrixAccumulator([1f], [1], [0.5f]));
        withSum.WriteGguf(P("s.gguf"));
        var d = new ImatrixData(10);
        d.Merge(ImatrixFile.Read(P("s.gguf")));
        d.Merge(ImatrixFile.Read(P("s.gguf")));
        Assert.Equal([1f], d.Entries["a.weight"].InSum!);
        ImatrixFiles.WriteGguf(P("n.gguf"), [new("a.weight", [1f], [1f])], ["x"], 1, 10);
        d.Merge(ImatrixFile.Read(P("n.gguf")));
        Assert.Null(d.Entries["a.weight"].InSum);
    }

    [Fact]
    public void The_collector_records_what_llama_imatrix_records()
    {
        var d = new ImatrixData(32);
        var c = new ImatrixCollector(d, layers: 0) { ProcessOutput = false };
        var x = Enumerable.Range(0, 16 * 2).Select(i => (float)(i % 5 - 2)).ToArray();
        c.OnMatMulInput("blk.0.attn_q.weight", 2, x, 16);
        c.OnMatMulInput("blk.0.attn_q.weight", 2, x.AsSpan(0, 30), 15); // fewer than 16 rows: ignored
        c.OnMatMulInput("output.weight", 2, x, 16);                      // only with --process-output
        c.OnMatMulInput("token_embd.weight", 2, x, 16);                  // never
        Assert.Equal(["blk.0.attn_q.weight"], d.Entries.Keys);
        var e = d.Entries["blk.0.attn_q.weight"];
        Assert.Equal([16L], e.Counts);
        Assert.Equal([Enumerable.Range(0, 16).Sum(r => MathF.Pow(x[2 * r], 2)), Enumerable.Range(0, 16).Sum(r => MathF.Pow(x[2 * r + 1], 2))], e.InSum2);
        Assert.Equal([Enumerable.Range(0, 16).Sum(r => x[2 * r]), Enumerable.Range(0, 16).Sum(r => x[2 * r + 1])], e.InSum!);

        var withOutput = new ImatrixCollector(d, 0) { ProcessOutput = true };
        withOutput.OnMatMulInput("output.weight", 2, x, 16);
        Assert.Contains("output.weight", d.Entries.Keys);
        Assert.Throws<InvalidInputException>(() => withOutput.OnMatMulInput("blk.0.attn_q.weight", 3, new float[48], 16));
        Assert.Throws<InvalidInputException>(() => withOutput.OnMatMulInput("blk.0.attn_k.weight", 2, Enumerable.Repeat(float.NaN, 32).ToArray(), 16));
    }

    [Fact]
    public void Expert_inputs_are_counted_per_routed_expert()
    {
        var d = new ImatrixData(4);
        var c = new ImatrixCollector(d, 0);
        // 3 tokens, 2 experts used of 3, the token's input shared by its experts: expert 2 is never chosen.
        float[] x = [1, 2, 3, 4, 5, 6];
        int[] ids = [0, 1, 1, 0, 0, 1];
        c.AddExperts("blk.0.ffn_up_exps.weight", columns: 2, experts: 3, used: 2, tokens: 3, inputsPerToken: 1, x, ids);
        var e = d.Entries["blk.0.ffn_up_exps.weight"];
        Assert.Equal([3L, 3L, 0L], e.Counts);
        Assert.Equal([1 + 9 + 25, 4 + 16 + 36, 1 + 9 + 25, 4 + 16 + 36, 0, 0], e.InSum2);
        Assert.Equal(["blk.0.ffn_up_exps.weight"], d.PartialEntries);
        // ffn_down_exps style: one input row per (token, slot).
        c.AddExperts("blk.0.ffn_down_exps.weight", 1, 2, 2, 2, 2, [1, 2, 3, 4], [0, 1, 1, 1]);
        Assert.Equal([1L, 3L], d.Entries["blk.0.ffn_down_exps.weight"].Counts);
        Assert.Equal([1f, 4 + 9 + 16], d.Entries["blk.0.ffn_down_exps.weight"].InSum2);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.AddExperts("blk.0.x.weight", 1, 2, 1, 1, 1, [1f], [5]));
    }

    /// <summary>A small llama with random weights, and tokens for 4 chunks of 32.</summary>
    private (string Model, int[] Tokens) Model()
    {
        var path = P("llama.gguf");
        SyntheticModels.Write(path, SyntheticModels.Llama with { NEmbd = 64, NFf = 128, NHead = 2, NHeadKv = 1, HeadDim = 32, NVocab = 64 }, seed: 4);
        var rng = new Random(2);
        return (path, Enumerable.Range(0, 4 * 32 + 5).Select(_ => rng.Next(64)).ToArray());
    }

    [Fact]
    public void An_interrupted_collection_resumes_to_the_uninterrupted_file()
    {
        var (modelPath, tokens) = Model();
        using var model = TransformerModel.Load(modelPath);
        var o = new ImatrixOptions { ContextSize = 32, BatchSize = 64, OutputFrequency = 1, Threads = 1 };

        var whole = new ImatrixData(32) { Dataset = "calib.txt" };
        var r = ImatrixRun.Collect(model, tokens, 1, whole, o with { OutputPath = P("whole.gguf") }, cancel: TestContext.Current.CancellationToken);
        whole.WriteGguf(P("whole.gguf"));
        Assert.Equal(4, r.ChunksDone);
        Assert.NotNull(r.Perplexity);

        // Interrupted after the first batch of two chunks (Ctrl+C): what is complete is saved.
        using var cancel = new CancellationTokenSource();
        var part = new ImatrixData(32) { Dataset = "calib.txt" };
        var stopped = ImatrixRun.Collect(model, tokens, 1, part, o with { OutputPath = P("part.gguf") },
            new Progress(p => { if (p.ChunksDone >= 2) cancel.Cancel(); }), cancel.Token);
        Assert.True(stopped.Cancelled);
        Assert.Equal(2, stopped.ChunksDone);
        Assert.Equal(2, ImatrixFile.Read(P("part.gguf")).RunState!.ChunksDone);

        var (data, state) = ImatrixRun.Resume(ImatrixFile.Read(P("part.gguf")), "calib.txt", 32);
        var resumed = ImatrixRun.Collect(model, tokens, 1, data, o with { OutputPath = P("part.gguf") }, cancel: TestContext.Current.CancellationToken, resume: state);
        data.WriteGguf(P("part.gguf"));
        Assert.Equal(4, resumed.ChunksDone);
        Assert.Equal(r.Perplexity, resumed.Perplexity);
        Assert.Equal(File.ReadAllBytes(P("whole.gguf")), File.ReadAllBytes(P("part.gguf")));

        // Resuming with other settings or another dataset is refused.
        Assert.Throws<InvalidInputException>(() => ImatrixRun.Resume(ImatrixFile.Read(P("part.gguf")), "other.txt", 32));
        var (d2, s2) = ImatrixRun.Resume(ImatrixFile.Read(P("part.gguf")), "calib.txt", 32);
        Assert.Throws<InvalidInputException>(() => ImatrixRun.Collect(model, tokens[..100], 1, d2, o, cancel: TestContext.Current.CancellationToken, resume: s2));
    }

    [Fact]
    public void The_batch_size_does_not_change_the_file_while_attention_takes_the_same_path()
    {
        // llama.cpp's flash attention computes batches of 64 tokens or more another way (tiled, f32 values) than
        // smaller ones (per cell, fp16 values), and Squeeze follows it; so llama-imatrix's sums, like Squeeze's, depend
        // on the batch only through that choice. Batches of 16 and 32 tokens (one or two per 32-token chunk) stay on
        // the per-cell path and must give the same file; 128 tokens (four chunks at once) take the tiled path.
        var (modelPath, tokens) = Model();
        using var model = TransformerModel.Load(modelPath);
        foreach (int b in new[] { 16, 32 })
        {
            var d = new ImatrixData(32) { Dataset = "calib.txt" };
            ImatrixRun.Collect(model, tokens, 1, d, new ImatrixOptions { ContextSize = 32, BatchSize = b, Threads = 1 }, cancel: TestContext.Current.CancellationToken);
            d.WriteGguf(P($"b{b}.gguf"));
        }
        Assert.Equal(File.ReadAllBytes(P("b16.gguf")), File.ReadAllBytes(P("b32.gguf")));
    }

    [Fact]
    public void Periodic_saves_and_snapshots_follow_the_frequencies()
    {
        var (modelPath, tokens) = Model();
        using var model = TransformerModel.Load(modelPath);
        var saved = new List<string?>();
        var data = new ImatrixData(32) { Dataset = "calib.txt" };
        ImatrixRun.Collect(model, tokens, null, data, new ImatrixOptions { ContextSize = 32, BatchSize = 32, OutputFrequency = 2, SaveFrequency = 3, Threads = 1, OutputPath = P("o.gguf"), ComputePerplexity = false },
            new Progress(p => saved.Add(p.SavedTo)), TestContext.Current.CancellationToken);
        Assert.Equal([null, P("o.gguf"), P("o.gguf.at_3"), P("o.gguf")], saved);
        Assert.True(File.Exists(P("o.gguf.at_3")));
        Assert.Equal(3, ImatrixFile.Read(P("o.gguf.at_3")).ChunkCount);
        var li = data.LayerImportance!;
        Assert.Equal(2, li.Layers);
        Assert.Equal(4 * 32, li.LimTokens[0]);
        Assert.InRange(li.Lim(1), -1, 1);
    }

    [Fact]
    public void Too_few_tokens_and_bad_sizes_are_refused()
    {
        var o = new ImatrixOptions { ContextSize = 32 };
        Assert.Throws<InvalidInputException>(() => ImatrixRun.Plan(new int[63], o));
        Assert.Equal(2, ImatrixRun.Plan(new int[64], o).Chunks);
        Assert.Throws<InvalidInputException>(() => ImatrixRun.Plan(new int[96], o with { SkipChunks = 1 })); // llama.cpp wants more than (skip + 2) chunks
        Assert.Equal(3, ImatrixRun.Plan(new int[140], o with { SkipChunks = 1 }).Chunks); // 108 tokens left
        Assert.Throws<InvalidInputException>(() => ImatrixRun.Plan(new int[640], o with { BatchSize = 0 }));
        Assert.Throws<InvalidInputException>(() => ImatrixRun.Plan(new int[640], o with { ContextSize = 0 }));
        Assert.Equal(1, ImatrixRun.Plan(new int[640], o with { Chunks = 1 }).Chunks);
    }

    public static TheoryData<string, Action<GgufWriter>, string> Corruptions() => new()
    {
        { "in_sum of the wrong type", w => w.AddTensor("a.weight.in_sum", GgmlType.F16, [2], new byte[4]), "a.weight.in_sum" },
        { "in_sum of the wrong size", w => w.AddTensor("a.weight.in_sum", GgmlType.F32, [3], new byte[12]), "a.weight.in_sum" },
        { "in_sum alone", w => w.AddTensor("b.weight.in_sum", GgmlType.F32, [2], new byte[8]), "b.weight" },
        { "one layer-importance key", w => w.Set(LayerImportance.Keys.LimSum, GgufValue.Array(new GgufArray(GgufValueType.Float64, new double[2]))), "layer_importance" },
        { "layer importance of the wrong type", w => SetImportance(w, GgufValueType.Float32), "layer_importance" },
        { "layer importance sums beyond the token count", w => SetImportance(w, GgufValueType.Float64, sum: 5, count: 2), "layer_importance" },
        { "layer importance of unequal lengths", w => SetImportance(w, GgufValueType.Float64, counts: 3), "layer_importance" },
        { "a non-finite layer importance sum", w => SetImportance(w, GgufValueType.Float64, sum: double.NaN), "layer_importance" },
        { "a run count beyond int", w => { new ImatrixRunState("x", 1, 2, 0, 1, 0, 0, 0, 0).WriteTo(w); w.Set(ImatrixRunState.Keys.ChunksDone, GgufValue.UInt32(uint.MaxValue)); }, ImatrixRunState.Keys.ChunksDone },
        { "a run token count beyond long", w => { new ImatrixRunState("x", 1, 2, 0, 1, 0, 0, 0, 0).WriteTo(w); w.Set(ImatrixRunState.Keys.PplTokens, GgufValue.UInt64(ulong.MaxValue)); }, ImatrixRunState.Keys.PplTokens },
        { "one run key", w => w.Set(ImatrixRunState.Keys.ChunksDone, GgufValue.UInt32(3)), "squeeze.imatrix.run" },
        { "a run key of the wrong type", w => { new ImatrixRunState("x", 1, 2, 0, 1, 0, 0, 0, 0).WriteTo(w); w.Set(ImatrixRunState.Keys.ChunksDone, GgufValue.Int32(3)); }, ImatrixRunState.Keys.ChunksDone },
    };

    private static void SetImportance(GgufWriter w, GgufValueType sumType, double sum = 0, ulong count = 1, int counts = 2)
    {
        foreach (var (s, c) in new[] { (LayerImportance.Keys.LimSum, LayerImportance.Keys.LimCount), (LayerImportance.Keys.LayerSum, LayerImportance.Keys.LayerCount),
            (LayerImportance.Keys.AttnSum, LayerImportance.Keys.AttnCount), (LayerImportance.Keys.FfnSum, LayerImportance.Keys.FfnCount) })
        {
            w.Set(s, sumType == GgufValueType.Float64
                ? GgufValue.Array(new GgufArray(GgufValueType.Float64, new[] { sum, 0.0 }))
                : GgufValue.Array(GgufArray.Of(new[] { 0f, 0f })));
            w.Set(c, GgufValue.Array(new GgufArray(GgufValueType.UInt64, Enumerable.Repeat(count, counts).ToArray())));
        }
    }

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Rejects_corrupt_squeeze_extensions(string what, Action<GgufWriter> corrupt, string field)
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Type, GgufValue.String("imatrix"));
        w.AddTensor("a.weight.in_sum2", GgmlType.F32, [2], new byte[8]);
        w.AddTensor("a.weight.counts", GgmlType.F32, [1], BitConverter.GetBytes(1f));
        corrupt(w);
        w.WriteTo(P("c.gguf"));
        var e = Assert.Throws<ImatrixFormatException>(() => ImatrixFile.Read(P("c.gguf")));
        Assert.True(e.Field.Contains(field) || e.Expected.Contains(field) || e.Found.Contains(field), $"{what}: {e.Message}");
    }

    private sealed class Progress(Action<ImatrixProgress> report) : IProgress<ImatrixProgress>
    {
        public void Report(ImatrixProgress value) => report(value);
    }

    [Fact]
    public void Legacy_bytes_are_little_endian_int32_fields()
    {
        var d = new ImatrixData(512) { Dataset = "d" };
        d.Entries.Add("w", new ImatrixAccumulator([512f], [512], null));
        d.ChunkCount = 1;
        var b = d.ToLegacyBytes();
        Assert.Equal(4 + 4 + 1 + 4 + 4 + 4 + 4 + 4 + 1, b.Length);
        Assert.Equal(1, BinaryPrimitives.ReadInt32LittleEndian(b));
        Assert.Equal(1, BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(9))); // ncall
        Assert.Equal(1f, BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan(17)));
    }
}
