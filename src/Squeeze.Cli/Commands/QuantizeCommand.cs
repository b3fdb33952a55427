using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Quantization;
using Squeeze.Quants;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze quantize IN.gguf OUT.gguf TYPE --pure [--imatrix FILE] [--threads N]</c>: every quantizable tensor to
/// TYPE's tensor type (llama-quantize's <c>--pure</c>), bit-identical to llama.cpp.
/// </summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var input = new Argument<FileInfo>("input") { Description = "The model to quantize (GGUF, F32/F16/BF16 weights)." };
        var output = new Argument<FileInfo>("output") { Description = "The GGUF file to write (replaced only when complete)." };
        var type = new Argument<string>("type")
        {
            Description = "A llama.cpp file type (Q4_K_M, IQ3_S, Q8_0, 15, ...) or a ggml type name (nvfp4, mxfp4, ...).",
        };
        var pure = new Option<bool>("--pure") { Description = "Quantize every quantizable tensor to the file type's default tensor type (required until presets land)." };
        var imatrix = new Option<FileInfo?>("--imatrix") { Description = "Importance matrix (llama.cpp's GGUF or legacy .dat format)." };
        var threads = new Option<int>("--threads", "-t")
        {
            Description = "Worker threads.",
            DefaultValueFactory = _ => Squeeze.Numerics.Workers.DefaultThreads,
        };
        var allowRequantize = new Option<bool>("--allow-requantize") { Description = "Allow dequantizing and requantizing tensors that are already quantized." };
        var includeWeights = new Option<string[]>("--include-weights") { Description = "Use the imatrix only for tensors whose names contain this (repeatable)." };
        var excludeWeights = new Option<string[]>("--exclude-weights") { Description = "Do not use the imatrix for tensors whose names contain this (repeatable)." };
        var leaveOutput = new Option<bool>("--leave-output-tensor") { Description = "Keep output.weight as it is." };
        var outputType = new Option<string?>("--output-tensor-type") { Description = "ggml type for output.weight (no fallback)." };
        var embeddingType = new Option<string?>("--token-embedding-type") { Description = "ggml type for the token embeddings (no fallback)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print each tensor's type, the reason and the sizes; write nothing." };
        var command = new Command("quantize", "Quantize a GGUF model, byte-identical to llama-quantize.")
        {
            input, output, type, pure, imatrix, includeWeights, excludeWeights, threads, allowRequantize, leaveOutput, outputType, embeddingType, dryRun,
        };
        command.SetAction(p => CommandRunner.Run(() => Run(
            p.GetRequiredValue(input), p.GetRequiredValue(output), p.GetRequiredValue(type), p.GetValue(pure),
            p.GetValue(imatrix), p.GetValue(includeWeights) ?? [], p.GetValue(excludeWeights) ?? [], p.GetValue(threads), p.GetValue(allowRequantize), p.GetValue(dryRun),
            new PureOptions
            {
                QuantizeOutput = !p.GetValue(leaveOutput),
                OutputTensorType = ParseGgmlType(p.GetValue(outputType), "--output-tensor-type"),
                TokenEmbeddingType = ParseGgmlType(p.GetValue(embeddingType), "--token-embedding-type"),
            })));
        return command;
    }

    private static int Run(FileInfo input, FileInfo output, string typeText, bool pure, FileInfo? imatrixFile, string[] include, string[] exclude, int threads, bool allowRequantize, bool dryRun, PureOptions pureOptions)
    {
        if (!LlamaFileTypes.TryParse(typeText, out var target))
            throw new InvalidInputException($"'{typeText}' is not a file type ({string.Join(", ", LlamaFileTypes.All.Where(r => r.IsListed).Select(r => r.Name))}) or a ggml type name");
        if (!pure)
            throw new InvalidInputException("only --pure quantization is available so far: add --pure (every quantizable tensor gets the type's default tensor type)");
        if (threads < 1) throw new InvalidInputException($"--threads must be at least 1, not {threads}");
        if (!input.Exists) throw new FileNotFoundException($"file not found: {input.FullName}", input.FullName);

        if (imatrixFile is null && (include.Length > 0 || exclude.Length > 0))
            throw new InvalidInputException("--include-weights and --exclude-weights need --imatrix");
        ImportanceMatrix? importance = null;
        if (imatrixFile is not null)
        {
            if (!imatrixFile.Exists) throw new FileNotFoundException($"file not found: {imatrixFile.FullName}", imatrixFile.FullName);
            // Recorded as the user spelled it, like llama-quantize records its argument.
            importance = ImportanceMatrix.Load(imatrixFile.ToString()).Filtered(include, exclude);
        }

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            using var model = GgufFile.Open(input.FullName);
            var plan = QuantizationPlan.Pure(model, target!, pureOptions);
            if (dryRun)
            {
                RenderPlan(input, target!, plan);
                return CommandRunner.Ok;
            }
            var options = new QuantizeOptions { Imatrix = importance, Threads = threads, AllowRequantize = allowRequantize };
            QuantizeSummary summary;
            if (CommandRunner.Interactive)
            {
                summary = AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"quantizing to {Markup.Escape(target!.ToString())}", maxValue: 1.0);
                        var progress = new Reporter(p =>
                        {
                            task.Description = Markup.Escape($"{p.TensorIndex + 1}/{p.TensorCount} {p.TensorName} -> {p.TargetType.Name()}");
                            task.Value = p.Fraction;
                        });
                        var s = ModelQuantizer.Quantize(model, plan, output.FullName, options, progress, cancel.Token);
                        task.Value = 1.0;
                        return s;
                    });
            }
            else
            {
                summary = ModelQuantizer.Quantize(model, plan, output.FullName, options, null, cancel.Token);
            }
            Render(input, target!, summary, importance);
            return CommandRunner.Ok;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static void Render(FileInfo input, QuantizeTarget target, QuantizeSummary s, ImportanceMatrix? importance)
    {
        var console = AnsiConsole.Console;
        var table = new Table().Title(Markup.Escape($"{input.Name} -> {Path.GetFileName(s.OutputPath)} ({target}, pure)"))
            .AddColumn("type").AddColumn(new TableColumn("tensors").RightAligned()).AddColumn(new TableColumn("parameters").RightAligned())
            .AddColumn(new TableColumn("bytes").RightAligned()).AddColumn(new TableColumn("bpw").RightAligned());
        foreach (var t in s.ByType)
            table.AddTextRow(t.Type.Name(), t.Tensors.ToString(CultureInfo.InvariantCulture), Format.Count(t.Elements), Format.Bytes(t.Bytes), Format.Bpw(t.BitsPerWeight));
        table.AddTextRow("total", s.Tensors.Count.ToString(CultureInfo.InvariantCulture), Format.Count(s.Elements), Format.Bytes(s.OutputTensorBytes), Format.Bpw(s.BitsPerWeight));
        console.Write(table);
        console.WriteLine($"model size {Format.Bytes(s.InputTensorBytes)} ({Format.Bpw(s.InputBitsPerWeight)} bpw) -> {Format.Bytes(s.OutputTensorBytes)} ({Format.Bpw(s.BitsPerWeight)} bpw); " +
            $"file {Format.Bytes(s.OutputFileBytes)}; {s.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
        if (s.FallbackCount > 0)
            console.WriteLine($"{s.FallbackCount} of {s.Tensors.Count} tensors needed a fallback type (rows not a multiple of the block size)");
        if (importance is not null)
            console.WriteLine($"imatrix: {importance.EntryCount} entries; importance weights given to {s.Tensors.Count(t => t.UsedImatrix)} tensors");
    }

    /// <summary>A ggml type name, ignoring case, as llama-quantize's <c>parse_ggml_type</c> reads it.</summary>
    private static GgmlType? ParseGgmlType(string? text, string option)
    {
        if (text is null) return null;
        if (GgmlTypes.TryParse(text, out var t) && IsWeightType(t)) return t;
        throw new InvalidInputException($"{option}: '{text}' is not a ggml type a tensor can be stored in");
    }

    private static bool IsWeightType(GgmlType t) => t is not (GgmlType.Q8_1 or GgmlType.Q8_K or GgmlType.I8 or GgmlType.I16 or GgmlType.I32 or GgmlType.I64 or GgmlType.F64);

    private static void RenderPlan(FileInfo input, QuantizeTarget target, QuantizationPlan plan)
    {
        var console = AnsiConsole.Console;
        var table = new Table().Title(Markup.Escape($"{input.Name} as {target}, pure (dry run)"))
            .AddColumn(new TableColumn("tensor").NoWrap()).AddColumn("shape").AddColumn("type").AddColumn(new TableColumn("bytes").RightAligned()).AddColumn("reason");
        foreach (var t in plan.Tensors)
            table.AddTextRow(t.Tensor.Name, string.Join(" x ", t.Tensor.Shape), t.Converts ? $"{t.Tensor.Type.Name()} -> {t.TargetType.Name()}" : t.TargetType.Name(),
                Format.Bytes(t.OutputBytes), t.Reason);
        console.Write(table);
        long elements = plan.Tensors.Sum(t => t.Tensor.ElementCount), before = plan.Tensors.Sum(t => t.Tensor.ByteSize), after = plan.Tensors.Sum(t => t.OutputBytes);
        console.WriteLine($"model size {Format.Bytes(before)} ({Format.Bpw(before * 8.0 / Math.Max(1, elements))} bpw) -> {Format.Bytes(after)} ({Format.Bpw(after * 8.0 / Math.Max(1, elements))} bpw)");
        if (plan.FallbackCount > 0)
            console.WriteLine($"{plan.FallbackCount} of {plan.Tensors.Count} tensors need a fallback type (rows not a multiple of the block size)");
        var needs = plan.Tensors.Where(t => t.Converts && t.RequiresImatrix).ToList();
        if (needs.Count > 0) console.WriteLine($"{needs.Count} tensors need an imatrix (--imatrix) for this type");
    }

    /// <summary>Reports synchronously on the quantizer's thread (System.Progress would post to the thread pool).</summary>
    private sealed class Reporter(Action<QuantizeProgress> report) : IProgress<QuantizeProgress>
    {
        public void Report(QuantizeProgress value) => report(value);
    }
}
