using Squeeze.Evaluation;
using Squeeze.Models;
using Xunit;

namespace Squeeze.Tests.Evaluation;

public sealed class SpeedBenchTests
{
    /// <summary>Records what the benchmark decodes.</summary>
    private sealed class Recorder : IBatchDecoder
    {
        public List<BatchToken[]> Batches { get; } = [];
        public int Clears { get; private set; }
        public int VocabSize => 100;
        public void ClearCache() => Clears++;
        public float[] Decode(ReadOnlySpan<BatchToken> batch)
        {
            Batches.Add(batch.ToArray());
            return new float[batch.ToArray().Count(t => t.Output) * VocabSize];
        }
    }

    [Theory]
    [InlineData(512, 0, "pp512")]
    [InlineData(0, 128, "tg128")]
    [InlineData(1024, 1024, "pp1024+tg1024")]
    public void Tests_are_named_as_llama_bench_names_them(int p, int g, string name) => Assert.Equal(name, new BenchTest(p, g).Name);

    [Fact]
    public void A_prompt_and_generation_test_decodes_as_llama_bench_does()
    {
        var d = new Recorder();
        var r = SpeedBench.Run(d, new BenchTest(5, 3), new BenchOptions { Repetitions = 2, BatchSize = 2 }, bos: 1, TestContext.Current.CancellationToken);
        Assert.Equal(2, r.SamplesNs.Count);
        Assert.Equal(3, d.Clears); // warm-up and each repetition start empty
        // Warm-up: the prompt in batches of 2, 2, 1, then one generated token; then per repetition 3 prompt batches and 3 tokens.
        Assert.Equal(4 + 2 * 6, d.Batches.Count);
        var prompt = d.Batches.Skip(4).Take(3).ToList();
        Assert.Equal([2, 2, 1], prompt.Select(b => b.Length));
        Assert.Equal(1, prompt[0][0].Token);
        Assert.Equal([0, 1, 2, 3, 4], prompt.SelectMany(b => b).Select(t => t.Position));
        Assert.All(prompt, b => Assert.Equal(b.Length - 1, Array.FindIndex(b, t => t.Output)));
        var gen = d.Batches.Skip(7).Take(3).Select(b => Assert.Single(b)).ToList();
        Assert.Equal([5, 6, 7], gen.Select(t => t.Position));
        Assert.Equal(1, gen[0].Token);
        Assert.True(r.AvgTs > 0);
    }

    [Fact]
    public void A_test_at_a_depth_fills_the_cache_untimed_then_starts_its_prompt_with_BOS_after_it()
    {
        var d = new Recorder();
        var test = new BenchTest(4, 2, Depth: 3);
        Assert.Equal("pp4+tg2 @ d3", test.Name);
        Assert.Equal(9, test.Cells);
        SpeedBench.Run(d, test, new BenchOptions { Repetitions = 1, BatchSize = 8, Warmup = false }, bos: 1, TestContext.Current.CancellationToken);
        // Depth prompt (positions 0..2, BOS first), the timed prompt (positions 3..6, BOS first again, as llama-bench's
        // test_prompt starts every prompt), then two generated tokens at 7 and 8.
        Assert.Equal([3, 4, 1, 1], d.Batches.Select(b => b.Length));
        Assert.Equal([0, 1, 2], d.Batches[0].Select(t => t.Position));
        Assert.Equal(1, d.Batches[0][0].Token);
        Assert.Equal([3, 4, 5, 6], d.Batches[1].Select(t => t.Position));
        Assert.Equal(1, d.Batches[1][0].Token);
        Assert.Equal([7, 8], d.Batches.Skip(2).Select(b => b[0].Position));
    }

    [Fact]
    public void Statistics_follow_llama_bench()
    {
        var r = new BenchResult(new BenchTest(100, 0), [1_000_000_000, 2_000_000_000, 4_000_000_000]);
        Assert.Equal(2_333_333_333, r.AvgNs);
        Assert.Equal([100.0, 50.0, 25.0], r.SamplesTs);
        Assert.Equal(175.0 / 3, r.AvgTs, 1e-9);
        double mean = 175.0 / 3;
        Assert.Equal(Math.Sqrt(((100 - mean) * (100 - mean) + (50 - mean) * (50 - mean) + (25 - mean) * (25 - mean)) / 2), r.StddevTs, 1e-9);
        Assert.Equal(0, new BenchResult(new BenchTest(1, 0), [5]).StddevTs);
    }

    [Fact]
    public void The_markdown_table_has_llama_benchs_columns()
    {
        var info = new ModelInfo("m.gguf", "m.gguf", 2_000_000, 1_040_128, 260_032, 32, "llama", "F32");
        var row = new BenchRow(info, SpeedBench.Describe(info), "CPU", 4, 2048, new BenchResult(new BenchTest(512, 0), [1_000_000_000]), "2026-01-01T00:00:00Z");
        var lines = BenchTable.Markdown([row]).TrimEnd().Split('\n');
        Assert.Equal("| model                          |       size |     params | backend    | threads |            test |                  t/s |", lines[0]);
        Assert.Equal("| ------------------------------ | ---------: | ---------: | ---------- | ------: | --------------: | -------------------: |", lines[1]);
        Assert.Equal("| llama 260K all F32             |   0.99 MiB |     0.26 M | CPU        |       4 |           pp512 |        512.00 ± 0.00 |", lines[2]);
        var csv = BenchTable.Csv([row]).Split('\n');
        Assert.StartsWith("build_commit,build_number,cpu_info,gpu_info,backends,model_filename,model_type,model_size,model_n_params,n_batch", csv[0]);
        Assert.EndsWith("n_prompt,n_gen,n_depth,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts", csv[0]);
        // llama-bench quotes every value, numbers too.
        Assert.EndsWith("\"512\",\"0\",\"0\",\"2026-01-01T00:00:00Z\",\"1000000000\",\"0\",\"512.000000\",\"0.000000\"", csv[1]);
    }

    [Fact]
    public void A_batch_size_other_than_llama_benchs_default_gets_an_n_batch_column()
    {
        var info = new ModelInfo("m.gguf", "m.gguf", 2_000_000, 1_040_128, 260_032, 32, "llama", "Q4_K_M");
        var row = new BenchRow(info, SpeedBench.Describe(info), "CPU", 4, 512, new BenchResult(new BenchTest(0, 128), [1_000_000_000]), "2026-01-01T00:00:00Z");
        var lines = BenchTable.Markdown([row]).TrimEnd().Split('\n');
        Assert.Equal("| model                          |       size |     params | backend    | threads | n_batch |            test |                  t/s |", lines[0]);
        Assert.Equal("| ------------------------------ | ---------: | ---------: | ---------- | ------: | ------: | --------------: | -------------------: |", lines[1]);
        Assert.Equal("| llama 260K Q4_K - Medium       |   0.99 MiB |     0.26 M | CPU        |       4 |     512 |           tg128 |        128.00 ± 0.00 |", lines[2]);
    }

    [Theory]
    [InlineData("F32", "llama 260K all F32")]
    [InlineData("Q8_0", "llama 260K Q8_0")]
    [InlineData("IQ3_M", "llama 260K IQ3_S mix - 3.66 bpw")]
    [InlineData("MXFP4_MOE", "llama 260K MXFP4 MoE")]
    public void Model_descriptions_name_file_types_as_llama_cpp_does(string fileType, string expected) =>
        Assert.Equal(expected, SpeedBench.Describe(new ModelInfo("m.gguf", "m.gguf", 1, 1, 260_032, 32, "llama", fileType)));
}
