using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using Squeeze.Conversion;
using Squeeze.Quants;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze convert HF_DIR --outfile OUT.gguf [--outtype f32|f16|bf16|q8_0|auto] [--vocab-only]</c>: a Hugging Face
/// checkpoint to GGUF, as llama.cpp's convert_hf_to_gguf.py writes it.
/// </summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Argument<DirectoryInfo>("model") { Description = "The Hugging Face model folder (config.json, *.safetensors, tokenizer.json)." };
        var outfile = new Option<FileInfo>("--outfile") { Description = "The GGUF file to write (replaced only when complete).", Required = true };
        var outtype = new Option<string>("--outtype")
        {
            Description = "Type of the 2-D weights: f32, f16, bf16, q8_0, or auto (the checkpoint's 16-bit type). Norms stay f32.",
            DefaultValueFactory = _ => "auto",
        };
        outtype.AcceptOnlyFromAmong("f32", "f16", "bf16", "q8_0", "auto");
        var vocabOnly = new Option<bool>("--vocab-only") { Description = "Write only the metadata and vocabulary, no tensors." };
        var command = new Command("convert", "Convert a Hugging Face checkpoint (Llama, Qwen2, Qwen3, Qwen3-MoE) to GGUF, as convert_hf_to_gguf.py does.")
        {
            model, outfile, outtype, vocabOnly,
        };
        command.SetAction(p => CommandRunner.Run(() =>
            Run(p.GetRequiredValue(model), p.GetRequiredValue(outfile), p.GetRequiredValue(outtype), p.GetValue(vocabOnly))));
        return command;
    }

    private static int Run(DirectoryInfo model, FileInfo outfile, string outtype, bool vocabOnly)
    {
        if (!model.Exists) throw new InvalidInputException($"model folder not found: {model.FullName}");
        var options = new ConvertOptions
        {
            OutType = outtype switch
            {
                "f32" => ConvertOutType.F32,
                "f16" => ConvertOutType.F16,
                "bf16" => ConvertOutType.BF16,
                "q8_0" => ConvertOutType.Q8_0,
                _ => ConvertOutType.Auto,
            },
            VocabOnly = vocabOnly,
        };
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        var clock = Stopwatch.StartNew();
        try
        {
            ConvertSummary summary;
            if (CommandRunner.Interactive)
            {
                summary = AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("converting", maxValue: 1.0);
                        var progress = new Reporter(p =>
                        {
                            task.Description = Markup.Escape($"{p.TensorIndex + 1}/{p.TensorCount} {p.TensorName} -> {p.Type.Name()}");
                            task.Value = p.BytesTotal == 0 ? 1.0 : (double)p.BytesDone / p.BytesTotal;
                        });
                        var s = HfConverter.Convert(model.FullName, outfile.FullName, options, progress, cancel.Token);
                        task.Value = 1.0;
                        return s;
                    });
            }
            else
            {
                summary = HfConverter.Convert(model.FullName, outfile.FullName, options, null, cancel.Token);
            }
            Render(model, outfile, summary, clock.Elapsed);
            return CommandRunner.Ok;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static void Render(DirectoryInfo model, FileInfo outfile, ConvertSummary s, TimeSpan elapsed)
    {
        var console = AnsiConsole.Console;
        string fileType = s.FileType switch { 0 => "F32", 1 => "F16", 7 => "Q8_0", 32 => "BF16", _ => s.FileType.ToString(CultureInfo.InvariantCulture) };
        if (s.Tensors.Count > 0)
        {
            var table = new Table().Title(Markup.Escape($"{model.Name} -> {outfile.Name} ({s.Architecture}, {fileType})"))
                .AddColumn("type").AddColumn(new TableColumn("tensors").RightAligned()).AddColumn(new TableColumn("parameters").RightAligned());
            foreach (var g in s.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key))
                table.AddTextRow(g.Key.Name(), g.Count().ToString(CultureInfo.InvariantCulture),
                    Format.Count(g.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b))));
            console.Write(table);
        }
        console.WriteLine($"{s.Architecture}, {s.Tensors.Count} tensors, {Format.Count(s.Parameters)} parameters, pre-tokenizer {s.Pre}; " +
            $"wrote {outfile.Name} ({Format.Bytes(s.Bytes)}) in {elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
    }

    /// <summary>Reports synchronously on the converter's thread.</summary>
    private sealed class Reporter(Action<ConvertProgress> report) : IProgress<ConvertProgress>
    {
        public void Report(ConvertProgress value) => report(value);
    }
}
