using Xunit;

namespace Squeeze.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class BenchReportCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-bench-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Bench_prints_llama_benchs_table_and_report_reads_its_json()
    {
        var json = Path.Combine(_dir, "bench.json");
        var (code, stdout, stderr) = CliHarness.Run("bench", "-m", TestData.StoriesModel, "-p", "16", "-n", "4", "-pg", "8,2", "-r", "2", "-t", "1", "--json", json);
        Assert.True(code == 0, stderr);
        var lines = stdout.TrimEnd().Split('\n');
        // Header, rule, three tests, then llama-bench's footer: a blank line and "build: ...".
        Assert.Equal(7, lines.Length);
        Assert.Equal("", lines[5]);
        Assert.Matches(@"^build: squeeze-\S+ \(0\)$", lines[6]);
        Assert.StartsWith("| model                          |       size |     params | backend    | threads |            test |", lines[0]);
        Assert.Contains("|            pp16 |", lines[2]);
        Assert.Contains("|             tg4 |", lines[3]);
        Assert.Contains("|         pp8+tg2 |", lines[4]);
        Assert.Matches(@"\| llama 260K all F32 +\| +0\.99 MiB \| +0\.26 M \| CPU +\| +1 \|", lines[2]);

        (code, stdout, stderr) = CliHarness.Run("report", json, "-o", Path.Combine(_dir, "card"));
        Assert.True(code == 0, stderr);
        Assert.Contains("pp16 t/s", stdout);
        Assert.True(File.Exists(Path.Combine(_dir, "card.csv")));
    }

    [Fact]
    public void Bench_with_another_batch_size_shows_an_n_batch_column_and_jsonl_prints_one_object_per_test()
    {
        var (code, stdout, stderr) = CliHarness.Run("bench", "-m", TestData.StoriesModel, "-p", "8", "-n", "0", "-b", "4", "-r", "1", "-t", "1");
        Assert.True(code == 0, stderr);
        var lines = stdout.TrimEnd().Split('\n');
        Assert.Equal("| model                          |       size |     params | backend    | threads | n_batch |            test |                  t/s |", lines[0]);
        Assert.Matches(@"\| +1 \| +4 \| +pp8 \|", lines[2]);

        (code, stdout, stderr) = CliHarness.Run("bench", "-m", TestData.StoriesModel, "-p", "8", "-n", "2", "-r", "1", "-t", "1", "-o", "jsonl", "--no-warmup");
        Assert.True(code == 0, stderr);
        var objects = stdout.TrimEnd().Split('\n').Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!).ToList();
        Assert.Equal([8, 0], objects.Select(o => (int)o["n_prompt"]!));
        Assert.Equal([0, 2], objects.Select(o => (int)o["n_gen"]!));
        Assert.All(objects, o => Assert.Single(o["samples_ns"]!.AsArray()));
    }

    [Theory]
    [InlineData("512", new[] { 512 })]
    [InlineData("128,256", new[] { 128, 256 })]
    [InlineData("128-512*2", new[] { 128, 256, 512 })]
    [InlineData("0-300+100,1024", new[] { 0, 100, 200, 300, 1024 })]
    [InlineData("5-4", new int[0])]
    public void Number_lists_take_llama_benchs_ranges(string text, int[] expected) =>
        Assert.Equal(expected, Squeeze.Cli.Commands.BenchCommand.Ints(text, "-p", 0));

    [Fact]
    public void Depths_multiply_the_tests_in_llama_benchs_order()
    {
        var tests = Squeeze.Cli.Commands.BenchCommand.Tests("16", "4", ["8,2"], "0,32");
        Assert.Equal(["pp16", "tg4", "pp8+tg2", "pp16 @ d32", "tg4 @ d32", "pp8+tg2 @ d32"], tests.Select(t => t.Name));
        var (code, stdout, stderr) = CliHarness.Run("bench", "-m", TestData.StoriesModel, "-p", "8", "-n", "0", "-d", "16", "-r", "1", "-t", "1", "-o", "csv");
        Assert.True(code == 0, stderr);
        var lines = stdout.TrimEnd().Split('\n');
        int depthColumn = Array.IndexOf(lines[0].Split(','), "n_depth");
        Assert.Equal("\"16\"", lines[1].Split(',')[depthColumn]);
    }

    [Theory]
    [InlineData("-o", "xml")]
    [InlineData("-p", "1-2*1")]
    [InlineData("-d", "x")]
    [InlineData("-p", "abc")]
    [InlineData("-r", "0")]
    [InlineData("-pg", "5")]
    public void Bad_bench_settings_get_one_line_and_exit_code_1(string option, string value)
    {
        var (code, _, stderr) = CliHarness.Run("bench", "-m", TestData.StoriesModel, option, value);
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Report_of_a_file_that_is_not_a_result_gets_one_line_and_exit_code_1()
    {
        var path = Path.Combine(_dir, "x.json");
        File.WriteAllText(path, "[1, 2]");
        var (code, _, stderr) = CliHarness.Run("report", path);
        Assert.Equal(1, code);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }
}
