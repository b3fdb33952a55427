using System.Text.Json;
using Squeeze.Imatrix;
using Xunit;

namespace Squeeze.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class ImatrixCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-imatrix-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>Calibration text from the shared data (about 3,000 stories260K tokens), written beside the outputs.</summary>
    private string Calibration()
    {
        var path = P("calib.txt");
        if (!File.Exists(path)) File.WriteAllText(path, File.ReadAllText(TestData.Require("calibration/groups_merged.txt"))[..8000]);
        return path;
    }

    private string Collect(string output, params string[] extra)
    {
        string[] chunks = extra.Contains("--chunks") ? [] : ["--chunks", "3"];
        var (code, stdout, stderr) = CliHarness.Run(["imatrix", "-m", TestData.StoriesModel, "-f", Calibration(), "-c", "64", .. chunks, "-o", output, "-t", "2", .. extra]);
        Assert.True(code == 0, stderr + stdout);
        return stdout;
    }

    [Fact]
    public void Collects_an_imatrix_with_perplexity_and_statistics()
    {
        var stdout = Collect(P("im.gguf"));
        Assert.Matches(@"\[1\]\d+\.\d{4},\[2\]\d+\.\d{4},\[3\]\d+\.\d{4},", stdout);
        Assert.Contains("Final estimate: PPL = ", stdout);
        var f = ImatrixFile.Read(P("im.gguf"));
        Assert.Equal(3, f.ChunkCount);
        Assert.Equal(64, f.ChunkSize);
        Assert.Equal([Calibration()], f.Datasets);
        Assert.Equal(5 * 7, f.Entries.Count); // 5 layers x 7 matrices; output is tied to the embeddings
        Assert.All(f.Entries.Values, e => Assert.Equal([192L], e.Counts));
        Assert.All(f.Entries.Values, e => Assert.NotNull(e.InSum));
        Assert.NotNull(f.LayerImportance);

        var (code, table, _) = CliHarness.Run("stats", P("im.gguf"));
        Assert.Equal(0, code);
        Assert.Contains("Σ(Act²)", table);
        Assert.Contains("attn_q", table);
        Assert.Contains("LIM", table);

        var (code2, alias, _) = CliHarness.Run("imatrix", "--show-statistics", "--in-file", P("im.gguf"));
        Assert.Equal(0, code2);
        Assert.Equal(table, alias);
    }

    [Fact]
    public void Stats_as_json_csv_and_a_heatmap()
    {
        Collect(P("s.gguf"), "--no-ppl");
        var (code, json, _) = CliHarness.Run("stats", P("s.gguf"), "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(json);
        var tensors = doc.RootElement.GetProperty("tensors");
        Assert.Equal(35, tensors.GetArrayLength());
        Assert.Equal(5, doc.RootElement.GetProperty("layers").GetArrayLength());
        Assert.True(tensors[0].GetProperty("activation").GetProperty("from_in_sum").GetBoolean());
        Assert.True(doc.RootElement.GetProperty("layers")[2].GetProperty("lim").GetDouble() is >= -1 and <= 1);

        var (code2, csv, _) = CliHarness.Run("stats", P("s.gguf"), "--csv", "--active-threshold", "1e-6");
        Assert.Equal(0, code2);
        var lines = csv.Split('\n');
        Assert.StartsWith("name,layer,tensor,sum_sq,min,max,mean,stddev,active_percent,n,entropy", lines[0]);
        Assert.Equal(1 + 35, Array.IndexOf(lines, ""));
        Assert.StartsWith("layer,weighted_sum_sq", lines[37]);

        var (code3, _, err) = CliHarness.Run("stats", P("s.gguf"), "--plot", P("zd.png"), "--plot-stat", "zd");
        Assert.True(code3 == 0, err);
        Assert.Equal(0x89, File.ReadAllBytes(P("zd.png"))[0]);
    }

    [Fact]
    public void Legacy_output_and_merging()
    {
        Collect(P("a.dat"), "--output-format", "dat", "--no-ppl");
        var dat = ImatrixFile.Read(P("a.dat"));
        Assert.Equal(ImatrixFormat.Legacy, dat.Format);
        Assert.All(dat.Entries.Values, e => Assert.Equal([3L], e.Counts));
        Collect(P("b.gguf"), "--no-ppl", "--chunk", "3");

        var (code, _, err) = CliHarness.Run("imatrix", "--in-file", P("a.dat"), "--in-file", P("b.gguf"), "-c", "64", "-o", P("m.gguf"));
        Assert.True(code == 0, err);
        var m = ImatrixFile.Read(P("m.gguf"));
        Assert.Equal(6, m.ChunkCount);
        Assert.Equal([Calibration(), Calibration()], m.Datasets);
        Assert.All(m.Entries.Values, e => Assert.Equal([384L], e.Counts));
        Assert.All(m.Entries.Values, e => Assert.Null(e.InSum)); // the legacy part had no Σx
    }

    [Fact]
    public void Resume_continues_a_saved_run()
    {
        Collect(P("r.gguf"), "--no-ppl");
        var (code, stdout, err) = CliHarness.Run("imatrix", "-m", TestData.StoriesModel, "-f", Calibration(), "-c", "64", "--chunks", "5", "-o", P("r.gguf"), "--no-ppl", "--resume");
        Assert.True(code == 0, err);
        Assert.Contains("resuming", stdout);
        Collect(P("whole.gguf"), "--no-ppl", "--chunks", "5");
        var a = ImatrixFile.Read(P("r.gguf"));
        var b = ImatrixFile.Read(P("whole.gguf"));
        Assert.Equal(5, a.ChunkCount);
        foreach (var (name, e) in b.Entries) Assert.Equal(e.Sums, a.Entries[name].Sums);
    }

    [Theory]
    [InlineData("imatrix")]
    [InlineData("imatrix --show-statistics")]
    [InlineData("imatrix --show-statistics --in-file a --in-file b")]
    [InlineData("stats missing.gguf")]
    [InlineData("stats corrupt.gguf")]
    [InlineData("imatrix -f calib.txt")]
    public void Bad_invocations_print_one_line_and_exit_1(string args)
    {
        File.WriteAllBytes(P("corrupt.gguf"), "GGUF\u0003\0\0\0garbage"u8.ToArray());
        var argv = args.Split(' ').Select(a => a is "corrupt.gguf" or "missing.gguf" ? P(a) : a is "calib.txt" ? Calibration() : a).ToArray();
        var (code, _, stderr) = CliHarness.Run(argv);
        Assert.Equal(1, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith("squeeze: ", stderr);
    }
}
