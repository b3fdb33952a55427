using Squeeze.Cli.Commands;
using Squeeze.Evaluation;
using Xunit;

namespace Squeeze.Tests.Cli;

/// <summary>
/// The text of llama-perplexity's KL-divergence lines, line by line: the expected strings are llama.cpp's printf formats
/// (tools/perplexity/perplexity.cpp at 815a2a591, <c>kl_divergence</c>) applied to the same values.
/// </summary>
public sealed class PerplexityOutputFormatTests
{
    private static Percentile[] Pct(params (string Name, double Value)[] values) => values.Select(v => new Percentile(v.Name, 0, v.Value)).ToArray();

    [Fact]
    public void The_closing_KL_statistics_are_printed_as_llama_perplexity_prints_them()
    {
        var r = new KlDivergenceResult
        {
            ContextSize = 512, ChunkCount = 2, Tokens = 510, Seconds = 1,
            PplQ = new(12.345678912, 0.123456789), PplBase = new(11.111111, 0.1), Correlation = 0.987654,
            LnPplRatio = new(0.105361, 0.00123), PplRatio = new(1.111111, 0.001367), PplDifference = new(1.234567, 0.0135),
            Kld = new(0.0123456, 0.000234),
            KldPercentiles = Pct(("Maximum", 1.5), ("99.9%", 0.9), ("99.0%", 0.4), ("95.0%", 0.1), ("90.0%", 0.05), ("Median", 0.005),
                ("10.0%", 0.0001), ("5.0%", 0.00005), ("1.0%", 0.00001), ("0.1%", 0.000001), ("Minimum", -0.000001)),
            DeltaP = new(-0.00123, 0.000456),
            DeltaPPercentiles = Pct(("Maximum", 0.5), ("99.9%", 0.3), ("99.0%", 0.1), ("95.0%", 0.05), ("90.0%", 0.02), ("75.0%", 0.005), ("Median", 0.0),
                ("25.0%", -0.004), ("10.0%", -0.02), ("5.0%", -0.05), ("1.0%", -0.1), ("0.1%", -0.3), ("Minimum", -0.6)),
            RmsDeltaP = new(0.0345, 0.00067), SameTop = new(0.9512, 0.0021),
        };
        string[] expected =
        [
            "====== Perplexity statistics ======",
            "Mean PPL(Q)                   :  12.345679 ±   0.123457",
            "Mean PPL(base)                :  11.111111 ±   0.100000",
            "Cor(ln(PPL(Q)), ln(PPL(base))):  98.77%",
            "Mean ln(PPL(Q)/PPL(base))     :   0.105361 ±   0.001230",
            "Mean PPL(Q)/PPL(base)         :   1.111111 ±   0.001367",
            "Mean PPL(Q)-PPL(base)         :   1.234567 ±   0.013500",
            "",
            "====== KL divergence statistics ======",
            "Mean    KLD:   0.012346 ±   0.000234",
            "Maximum KLD:   1.500000",
            "99.9%   KLD:   0.900000",
            "99.0%   KLD:   0.400000",
            "95.0%   KLD:   0.100000",
            "90.0%   KLD:   0.050000",
            "Median  KLD:   0.005000",
            "10.0%   KLD:   0.000100",
            " 5.0%   KLD:   0.000050",
            " 1.0%   KLD:   0.000010",
            " 0.1%   KLD:   0.000001",
            "Minimum KLD:  -0.000001",
            "",
            "====== Token probability statistics ======",
            "Mean    Δp: -0.123 ± 0.046 %",
            "Maximum Δp: 50.000%",
            "99.9%   Δp: 30.000%",
            "99.0%   Δp: 10.000%",
            "95.0%   Δp:  5.000%",
            "90.0%   Δp:  2.000%",
            "75.0%   Δp:  0.500%",
            "Median  Δp:  0.000%",
            "25.0%   Δp: -0.400%",
            "10.0%   Δp: -2.000%",
            " 5.0%   Δp: -5.000%",
            " 1.0%   Δp: -10.000%",
            " 0.1%   Δp: -30.000%",
            "Minimum Δp: -60.000%",
            "",
            "RMS Δp    :  3.450 ± 0.067 %",
            "Same top p: 95.120 ± 0.210 %",
        ];
        Assert.Equal(expected, PerplexityCommand.FinalStatistics(r).TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void The_per_chunk_KL_line_is_printed_as_llama_perplexity_prints_it()
    {
        var running = new KlRunning(new(12.3456789, 0.0456), new(0.0123, 0.00045), new(0.0456, 0.0012), new(0.0345, 0.0012), new(0.95, 0.0034));
        Assert.Equal("   3      12.3457 ±    0.0456       0.01230 ±    0.00045       0.04560 ±    0.00120     3.450 ±  0.120 %    95.000 ±  0.340 %",
            PerplexityCommand.ChunkLine(new KlProgress(3, 10, running)));
    }

    [Theory]
    [InlineData(0, 0, "[3]12.3457,")]
    [InlineData(1, 0, "    1024  12.3457  2.513306  0.012346\n")]
    [InlineData(1, 64, "     128  12.3457\n")]
    public void Running_perplexity_entries_follow_llama_perplexitys_output_types(int outputType, int stride, string expected)
    {
        var common = new PerplexityCommand.Common(new FileInfo("m.gguf"), null, 512, 2048, -1, 1, null, stride, outputType);
        var p = new PerplexityProgress(3, 10, 12.3456789) { Offset = stride > 0 ? 128 : 1024, MeanNll = 2.5133057, NllDeviation = 0.0123456 };
        Assert.Equal(expected, PerplexityCommand.RunningEntry(p, common));
    }

    [Theory]
    [InlineData(2.345, 100, 4, "perplexity: 2.35 seconds per pass - ETA 0.97 minutes")]
    [InlineData(30.0, 1000, 1, "perplexity: 30.00 seconds per pass - ETA 8 hours 20.00 minutes")]
    public void The_ETA_line_is_llama_perplexitys(double seconds, int chunks, int sequences, string expected) =>
        Assert.Equal(expected, PerplexityCommand.EtaLine("perplexity", seconds, chunks, sequences));
}
