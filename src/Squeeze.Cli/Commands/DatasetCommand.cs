using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Squeeze.Evaluation.Datasets;
using Squeeze.IO;

namespace Squeeze.Cli.Commands;

/// <summary><c>squeeze dataset convert INPUT -o OUTPUT [--to FORMAT] [--from KIND] [--labels FILE] [--json FILE]</c>:
/// evaluation sets into llama-perplexity's task files.</summary>
internal static class DatasetCommand
{
    public static Command Create()
    {
        var input = new Argument<FileInfo>("input") { Description = "The set: HellaSwag .txt(.gz) or .jsonl, WinoGrande .jsonl or .csv, ARC .jsonl, MMLU .csv (or a folder of them), TruthfulQA mc_task.json or TruthfulQA.csv, a multiple-choice .bin." };
        var output = new Option<FileInfo>("--output", "-o") { Description = "The task file to write (replaced only when complete).", Required = true };
        var to = new Option<string?>("--to") { Description = "Output format: hellaswag, winogrande or multiple-choice (default: the set's own; HellaSwag can also become multiple-choice)." };
        var from = new Option<string?>("--from") { Description = "The set's kind when its name does not tell: hellaswag-text, hellaswag-jsonl, winogrande-jsonl, winogrande-csv, arc-jsonl, mmlu-csv, truthfulqa-json, truthfulqa-csv, multiple-choice-binary." };
        var labels = new Option<FileInfo?>("--labels") { Description = "WinoGrande's labels file (one 1 or 2 per line, e.g. dev-labels.lst) for a JSONL without answers." };
        var json = new Option<FileInfo?>("--json") { Description = "Also save a summary as JSON." };
        var convert = new Command("convert", "Convert an evaluation set into llama.cpp's HellaSwag text, WinoGrande CSV or multiple-choice binary.") { input, output, to, from, labels, json };
        convert.SetAction(p => CommandRunner.Run(() => Convert(p.GetRequiredValue(input), p.GetRequiredValue(output), p.GetValue(to), p.GetValue(from), p.GetValue(labels), p.GetValue(json))));
        return new Command("dataset", "Prepare evaluation sets for task scoring.") { convert };
    }

    private static readonly Dictionary<string, DatasetKind> Kinds = new(StringComparer.OrdinalIgnoreCase)
    {
        ["hellaswag-text"] = DatasetKind.HellaSwagText, ["hellaswag-jsonl"] = DatasetKind.HellaSwagJsonl,
        ["winogrande-jsonl"] = DatasetKind.WinoGrandeJsonl, ["winogrande-csv"] = DatasetKind.WinoGrandeCsv,
        ["arc-jsonl"] = DatasetKind.ArcJsonl, ["mmlu-csv"] = DatasetKind.MmluCsv,
        ["truthfulqa-json"] = DatasetKind.TruthfulQaJson, ["truthfulqa-csv"] = DatasetKind.TruthfulQaCsv,
        ["multiple-choice-binary"] = DatasetKind.MultipleChoiceBinary,
    };

    private static readonly Dictionary<string, TaskFormat> Formats = new(StringComparer.OrdinalIgnoreCase)
    {
        ["hellaswag"] = TaskFormat.HellaSwag, ["winogrande"] = TaskFormat.WinoGrande, ["multiple-choice"] = TaskFormat.MultipleChoice,
    };

    private static int Convert(FileInfo input, FileInfo output, string? to, string? from, FileInfo? labels, FileInfo? json)
    {
        DatasetKind? kind = null;
        if (from is not null) kind = Kinds.TryGetValue(from, out var k) ? k : throw new InvalidInputException($"--from: '{from}' is not one of {string.Join(", ", Kinds.Keys)}");
        TaskFormat? format = null;
        if (to is not null) format = Formats.TryGetValue(to, out var f) ? f : throw new InvalidInputException($"--to: '{to}' is not one of {string.Join(", ", Formats.Keys)}");
        if (labels is not null && !labels.Exists) throw new FileNotFoundException($"file not found: {labels.FullName}", labels.FullName);
        var path = input.FullName;
        var data = DatasetConverter.Load(path, kind, labels?.FullName);
        var written = DatasetConverter.Write(data, output.FullName, format);
        long bytes = new FileInfo(output.FullName).Length;
        Console.Out.WriteLine($"{data.Count} tasks ({data.Kind}) -> {output.Name} ({Name(written)}, {Format.Bytes(bytes)})");
        if (json is not null)
        {
            AtomicFile.Write(json.FullName, stream =>
            {
                using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                w.WriteStartObject();
                w.WriteString("command", "dataset convert");
                w.WriteString("input", path);
                w.WriteString("kind", Kinds.First(x => x.Value == data.Kind).Key);
                w.WriteString("output", output.FullName);
                w.WriteString("format", Name(written));
                w.WriteNumber("tasks", data.Count);
                w.WriteNumber("bytes", bytes);
                w.WriteEndObject();
            });
        }
        return CommandRunner.Ok;
    }

    private static string Name(TaskFormat f) => Formats.First(x => x.Value == f).Key;
}
