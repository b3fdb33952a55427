using Squeeze.Evaluation;
using Xunit;

namespace Squeeze.Tests.Evaluation;

public sealed class ModelCardReportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-report-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static ModelInfo Model(string type, long bytes) => new($"m-{type}.gguf", $"m-{type}.gguf", bytes, bytes - 1000, 1_000_000, 8.0 * (bytes - 1000) / 1_000_000, "llama", type);

    private string Save(string name, string json)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, json);
        return path;
    }

    private static KlDivergenceResult Kl(double kld, double ratio) => new()
    {
        ContextSize = 512, ChunkCount = 2, Tokens = 510, PplQ = new(10 * ratio, 0.1), PplBase = new(10, 0.1), Correlation = 0.99, LnPplRatio = new(Math.Log(ratio), 0.001),
        PplRatio = new(ratio, 0.001), PplDifference = new(10 * ratio - 10, 0.01), Kld = new(kld, kld / 50), KldPercentiles = [new("Maximum", 1, kld * 20)],
        DeltaP = new(-0.001, 0.0001), DeltaPPercentiles = [new("Maximum", 1, 0.2)], RmsDeltaP = new(0.02, 0.001), SameTop = new(0.95, 0.01), Seconds = 1,
    };

    [Fact]
    public void Results_of_every_kind_combine_into_one_row_per_model()
    {
        var f16 = Model("F16", 2_000_000);
        var q4 = Model("Q4_K_M", 600_000);
        Save("f16-ppl.json", ResultFile.ToJson(ResultFile.Kinds.Perplexity, f16, "wiki.test.raw", new PerplexityResult(512, 2048, 4, 2, 5000, 510, 12.5, 0.3, Math.Log(12.5), 1)));
        Save("q4-ppl.json", ResultFile.ToJson(ResultFile.Kinds.Perplexity, q4, "wiki.test.raw", new PerplexityResult(512, 2048, 4, 2, 5000, 510, 13.0, 0.3, Math.Log(13), 1)));
        Save("q4-kl.json", ResultFile.ToJson(ResultFile.Kinds.KlDivergence, q4, "base.kl", Kl(0.0123, 1.04)));
        Save("q4-hs.json", ResultFile.ToJson("hellaswag", q4, "hellaswag_val_full.txt", new TaskScoreResult("HellaSwag", 400, 55.5, 2.48)));
        Save("q4-wg.json", ResultFile.ToJson("winogrande", q4, "winogrande.csv", new TaskScoreResult("WinoGrande", 1267, 60.5, 1.37)));
        Save("bench.json", ResultFile.ToJson(ResultFile.Kinds.Bench, q4, null, new[] { new { model = q4, test = "pp512", avg_ts = 512.0 } }));

        var report = ModelCardReport.Build(ResultFile.Read(Path.Combine(_dir, "f16-ppl.json")).Concat(Directory.EnumerateFiles(_dir).Where(f => !f.EndsWith("f16-ppl.json", StringComparison.Ordinal)).SelectMany(ResultFile.Read)));
        Assert.Equal(["m-F16.gguf", "m-Q4_K_M.gguf"], report.Rows.Select(r => r.Model.File));
        Assert.Same(report.Rows[0], report.Reference);
        var md = report.ToMarkdown().Split('\n');
        Assert.Equal("| Model | Type | Size | BPW | Shrinkage | PPL | ρPPL | PPL ratio | KLD | RMS Δp | Same top p | HellaSwag | WinoGrande | Avg tasks | pp512 t/s |", md[0]);
        Assert.Equal("| m-Q4_K_M.gguf | Q4_K_M | 0.57 MiB | 4.79 | 70.0% | 13.0000 ± 0.3000 | 99.00% | 1.0400 | 0.012300 | 2.000% | 95.000% | 55.50 | 60.50 | 58.00 | 512.00 |", md[3]);
        var csv = report.ToCsv().Split('\n');
        Assert.Equal("m-Q4_K_M.gguf,Q4_K_M,600000,4.79,70.0,13.0000,99.00,1.0400,0.012300,2.000,95.000,55.50,60.50,58.00,512.00", csv[2]);

        var files = report.Write(Path.Combine(_dir, "out", "card"));
        Assert.Equal(["card.md", "card.csv", "card-kld.png", "card-ppl-ratio.png"], files.Select(Path.GetFileName));
        Assert.All(files, f => Assert.True(new FileInfo(f).Length > 100));
    }

    [Fact]
    public void Strided_perplexity_stays_out_of_the_PPL_column_and_mixed_settings_are_noted()
    {
        var f16 = Model("F16", 2_000_000);
        var q4 = Model("Q4_K_M", 600_000);
        var results = new[]
        {
            Save("f16-ppl.json", ResultFile.ToJson(ResultFile.Kinds.Perplexity, f16, "wiki.test.raw", new PerplexityResult(512, 2048, 4, 2, 5000, 510, 12.5, 0.3, Math.Log(12.5), 1))),
            Save("q4-ppl.json", ResultFile.ToJson(ResultFile.Kinds.Perplexity, q4, "wiki.test.raw", new PerplexityResult(256, 2048, 8, 2, 5000, 254, 13.0, 0.3, Math.Log(13), 1))),
            Save("q4-strided.json", ResultFile.ToJson(ResultFile.Kinds.Perplexity, q4, "wiki.test.raw", new PerplexityResult(768, 512, 1, 3, 5000, 768, 9.0, 0.2, Math.Log(9), 1) { Stride = 256 })),
            Save("q4-kl.json", ResultFile.ToJson(ResultFile.Kinds.KlDivergence, q4, "f16.kl", Kl(0.0123, 1.04))),
            Save("f16-kl.json", ResultFile.ToJson(ResultFile.Kinds.KlDivergence, f16, "bf16.kl", Kl(0.0001, 1.0))),
        }.SelectMany(ResultFile.Read);
        var report = ModelCardReport.Build(results);
        Assert.Equal(13.0, report.Rows.Single(r => r.Model.File == "m-Q4_K_M.gguf").Ppl);
        Assert.Equal(3, report.Notes.Count);
        Assert.Contains("m-Q4_K_M.gguf", report.Notes[0]);
        Assert.Contains("wiki.test.raw with n_ctx 256; wiki.test.raw with n_ctx 512", report.Notes[1]);
        Assert.Contains("bf16.kl, f16.kl", report.Notes[2]);
        Assert.Contains("Note: Strided perplexity results", report.ToMarkdown());

        var same = ModelCardReport.Build(ResultFile.Read(Path.Combine(_dir, "f16-ppl.json")));
        Assert.Empty(same.Notes);
    }

    [Fact]
    public void A_file_that_is_not_a_result_is_rejected_in_one_line()
    {
        var e = Assert.Throws<InvalidInputException>(() => ResultFile.Read(Save("x.json", "{\"a\": 1}")));
        Assert.Contains("not a Squeeze result", e.Message);
        Assert.Throws<InvalidInputException>(() => ResultFile.Read(Save("y.json", "not json")));
        Assert.Throws<InvalidInputException>(() => ModelCardReport.Build(ResultFile.Read(Save("z.json",
            "{\"squeeze_result\": \"perplexity\", \"model\": null, \"result\": {\"ppl\": 1}}"))));
    }

    [Fact]
    public void An_unknown_reference_is_rejected()
    {
        Save("q.json", ResultFile.ToJson(ResultFile.Kinds.KlDivergence, Model("Q8_0", 1_000_000), "base.kl", Kl(0.001, 1.001)));
        var results = ResultFile.Read(Path.Combine(_dir, "q.json"));
        Assert.Contains("no result is about", Assert.Throws<InvalidInputException>(() => ModelCardReport.Build(results, "other.gguf")).Message);
    }
}
