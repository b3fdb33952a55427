using System.CommandLine;
using Squeeze.Evaluation;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze report RESULT.json|DIR ... [-o PREFIX] [--reference MODEL.gguf]</c>: the saved results of perplexity,
/// KL-divergence, task and bench runs combined into a model card's table (Markdown on stdout; with -o also
/// PREFIX.md, PREFIX.csv and PNG charts of KLD and PPL ratio against file size).
/// </summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var inputs = new Argument<string[]>("results") { Description = "Result files written with --json, or folders holding them (*.json).", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--output", "-o") { Description = "Write PREFIX.md, PREFIX.csv, PREFIX-kld.png and PREFIX-ppl-ratio.png." };
        var reference = new Option<string?>("--reference") { Description = "The model file sizes are compared with (default: the largest)." };
        var command = new Command("report", "Combine saved results into model-card tables and charts.") { inputs, output, reference };
        command.SetAction(p => CommandRunner.Run(() => Run(p.GetValue(inputs) ?? [], p.GetValue(output), p.GetValue(reference))));
        return command;
    }

    private static int Run(string[] inputs, string? output, string? reference)
    {
        var files = new List<string>();
        foreach (var input in inputs)
        {
            if (Directory.Exists(input)) files.AddRange(Directory.EnumerateFiles(input, "*.json").Order(StringComparer.Ordinal));
            else if (File.Exists(input)) files.Add(input);
            else throw new FileNotFoundException($"file not found: {input}", input);
        }
        if (files.Count == 0) throw new InvalidInputException("no result files (*.json) found");
        var results = files.SelectMany(ResultFile.Read).ToList();
        var report = ModelCardReport.Build(results, reference);
        Console.Out.Write(report.ToMarkdown());
        if (output is not null)
            foreach (var path in report.Write(output)) Console.Error.WriteLine($"wrote {path}");
        return CommandRunner.Ok;
    }
}
