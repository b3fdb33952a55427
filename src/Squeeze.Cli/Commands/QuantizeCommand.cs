using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Quantization;
using Squeeze.Quants;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze quantize [options] IN.gguf [OUT.gguf] TYPE [NTHREADS]</c>: llama-quantize's command line, with its
/// mixtures (presets as data), user rules, pruning and metadata overrides, byte-identical to llama.cpp.
/// </summary>
internal static class QuantizeCommand
{
    /// <summary>The parsed command line.</summary>
    private sealed record Args(
        FileInfo Input, string[] Positionals, bool Pure, FileInfo? Imatrix, string[] Include, string[] Exclude, int? Threads,
        bool AllowRequantize, bool DryRun, bool LeaveOutput, string? OutputType, string? EmbeddingType, string[] TensorTypes,
        string[] TensorTypeFiles, string? Prune, string[] Overrides, double? TargetBpw, string? TargetSize, FileInfo? PlanText);

    public static Command Create()
    {
        var input = new Argument<FileInfo>("input") { Description = "The model to quantize (GGUF)." };
        var rest = new Argument<string[]>("[output] type [nthreads]")
        {
            Description = "The GGUF file to write (default: ggml-model-TYPE.gguf beside the input), the file type (Q4_K_M, IQ3_S, 15, COPY, ...) and optionally the thread count.",
            Arity = new ArgumentArity(1, 3),
        };
        var pure = new Option<bool>("--pure") { Description = "No mixture: every quantizable tensor gets the file type's default tensor type (user rules still apply)." };
        var imatrix = new Option<FileInfo?>("--imatrix") { Description = "Importance matrix (llama.cpp's GGUF or legacy .dat format)." };
        var includeWeights = new Option<string[]>("--include-weights") { Description = "Use the imatrix only for tensors whose names contain this (repeatable)." };
        var excludeWeights = new Option<string[]>("--exclude-weights") { Description = "Do not use the imatrix for tensors whose names contain this (repeatable)." };
        var threads = new Option<int?>("--threads", "-t") { Description = "Worker threads (default: every core; the positional NTHREADS does the same)." };
        var allowRequantize = new Option<bool>("--allow-requantize") { Description = "Allow dequantizing and requantizing tensors that are already quantized." };
        var leaveOutput = new Option<bool>("--leave-output-tensor") { Description = "Keep output.weight as it is." };
        var outputType = new Option<string?>("--output-tensor-type") { Description = "ggml type for output.weight (no fallback)." };
        var embeddingType = new Option<string?>("--token-embedding-type") { Description = "ggml type for the token embeddings (no fallback)." };
        var tensorType = new Option<string[]>("--tensor-type")
        {
            Description = "PATTERN=TYPE: tensors whose name matches the regular expression PATTERN (searched, lower-cased) get TYPE; first match wins (repeatable).",
        };
        var tensorTypeFile = new Option<string[]>("--tensor-type-file") { Description = "A file of PATTERN=TYPE rules separated by spaces or newlines (after --tensor-type rules)." };
        var prune = new Option<string?>("--prune-layers") { Description = "Comma-separated layer numbers to remove; later layers are renumbered." };
        var overrideKv = new Option<string[]>("--override-kv") { Description = "KEY=TYPE:VALUE (int, float, bool, str): set metadata in the output (repeatable)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print each tensor's type and why, the sizes per layer and the bits per weight; write nothing." };
        var targetBpw = new Option<double?>("--target-bpw") { Description = "Choose every tensor's type for this many bits per weight (squeeze plan; needs --imatrix; then: IN OUT [NTHREADS])." };
        var targetSize = new Option<string?>("--target-size") { Description = "As --target-bpw, for a file size: bytes, or N with K, M, G." };
        var planText = new Option<FileInfo?>("--plan-file", "-f") { Description = "With a target: calibration text for the planner's forward-pass probes (see squeeze plan -f)." };
        var command = new Command("quantize", "Quantize a GGUF model as llama-quantize does (same command line, same bytes).")
        {
            input, rest, pure, imatrix, includeWeights, excludeWeights, threads, allowRequantize, leaveOutput, outputType, embeddingType,
            tensorType, tensorTypeFile, prune, overrideKv, dryRun, targetBpw, targetSize, planText,
        };
        command.SetAction(p => CommandRunner.Run(() => Run(new Args(
            p.GetRequiredValue(input), p.GetValue(rest) ?? [], p.GetValue(pure), p.GetValue(imatrix), p.GetValue(includeWeights) ?? [],
            p.GetValue(excludeWeights) ?? [], p.GetValue(threads), p.GetValue(allowRequantize), p.GetValue(dryRun), p.GetValue(leaveOutput),
            p.GetValue(outputType), p.GetValue(embeddingType), p.GetValue(tensorType) ?? [], p.GetValue(tensorTypeFile) ?? [], p.GetValue(prune),
            p.GetValue(overrideKv) ?? [], p.GetValue(targetBpw), p.GetValue(targetSize), p.GetValue(planText)))));
        return command;
    }

    private static int Run(Args a)
    {
        if (a.TargetBpw is not null || a.TargetSize is not null) return RunTarget(a);
        // llama-quantize: if the argument after the input is a file type, the output is ggml-model-TYPE.gguf beside the input.
        var pos = a.Positionals;
        string? outputPath;
        string typeText;
        int next;
        if (LlamaFileTypes.TryParse(pos[0], out _))
        {
            typeText = pos[0];
            outputPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(a.Input.ToString())) ?? ".", $"ggml-model-{LlamaFileTypes.QuantizeName(typeText)}.gguf");
            next = 1;
        }
        else
        {
            if (pos.Length < 2) throw new InvalidInputException($"'{pos[0]}' is not a file type, and no file type follows it ({FileTypeList()})");
            outputPath = pos[0];
            typeText = pos[1];
            next = 2;
        }
        if (!LlamaFileTypes.TryParse(typeText, out var target))
            throw new InvalidInputException($"'{typeText}' is not a file type ({FileTypeList()}) or a ggml type name");
        if (a.Threads is < 1) throw new InvalidInputException($"--threads must be at least 1, not {a.Threads}");
        int? threads = a.Threads;
        if (next < pos.Length)
        {
            if (!int.TryParse(pos[next], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n))
                throw new InvalidInputException($"invalid thread count '{pos[next]}'");
            threads = n;
            next++;
        }
        if (next < pos.Length) throw new InvalidInputException($"unexpected argument '{pos[next]}'");
        // As llama-quantize: NTHREADS of 0 or less means every core.
        int threadCount = threads is null or < 1 ? Squeeze.Numerics.Workers.DefaultThreads : threads.Value;
        if (!a.Input.Exists) throw new FileNotFoundException($"file not found: {a.Input.FullName}", a.Input.FullName);

        if (a.Include.Length > 0 && a.Exclude.Length > 0) throw new InvalidInputException("--include-weights and --exclude-weights cannot be used together");
        if (a.Imatrix is null && (a.Include.Length > 0 || a.Exclude.Length > 0))
            throw new InvalidInputException("--include-weights and --exclude-weights need --imatrix");
        ImportanceMatrix? importance = null;
        if (a.Imatrix is not null)
        {
            if (!a.Imatrix.Exists) throw new FileNotFoundException($"file not found: {a.Imatrix.FullName}", a.Imatrix.FullName);
            // Recorded as the user spelled it, like llama-quantize records its argument.
            importance = ImportanceMatrix.Load(a.Imatrix.ToString()).Filtered(a.Include, a.Exclude);
        }

        var rules = a.TensorTypes.Select(TensorTypeRule.Parse).Concat(a.TensorTypeFiles.SelectMany(TensorTypeRule.ParseFile)).ToList();
        var planOptions = new PlanOptions
        {
            Pure = a.Pure,
            QuantizeOutput = !a.LeaveOutput,
            OutputTensorType = ParseGgmlType(a.OutputType, "--output-tensor-type"),
            TokenEmbeddingType = ParseGgmlType(a.EmbeddingType, "--token-embedding-type"),
            TensorTypes = rules,
            PruneLayers = ParsePrune(a.Prune),
            MetadataOverrides = a.Overrides.Select(MetadataOverride.Parse).ToList(),
            HasImatrix = importance is { EntryCount: > 0 },
        };

        using var model = GgufFile.Open(a.Input.FullName);
        var plan = QuantizationPlan.Build(model, target!, planOptions);
        string mode = target!.IsCopy ? "copy" : a.Pure ? "pure" : "mixture";
        if (a.DryRun)
        {
            RenderPlan(a.Input, target, mode, plan, importance);
            return CommandRunner.Ok;
        }

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            var options = new QuantizeOptions { Imatrix = importance, Threads = threadCount, AllowRequantize = a.AllowRequantize };
            QuantizeSummary summary;
            if (CommandRunner.Interactive)
            {
                summary = AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"quantizing to {Markup.Escape(target.ToString())}", maxValue: 1.0);
                        var progress = new Reporter(p =>
                        {
                            task.Description = Markup.Escape($"{p.TensorIndex + 1}/{p.TensorCount} {p.TensorName} -> {p.TargetType.Name()}");
                            task.Value = p.Fraction;
                        });
                        var s = ModelQuantizer.Quantize(model, plan, outputPath, options, progress, cancel.Token);
                        task.Value = 1.0;
                        return s;
                    });
            }
            else
            {
                summary = ModelQuantizer.Quantize(model, plan, outputPath, options, null, cancel.Token);
            }
            Render(a.Input, target, mode, summary, importance, plan);
            return CommandRunner.Ok;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>
    /// <c>--target-bpw</c> / <c>--target-size</c>: the file type is chosen per tensor by the planner (<c>squeeze plan</c>),
    /// with <c>--tensor-type</c> rules pinned and charged to the budget. Positionals: IN OUT [NTHREADS].
    /// </summary>
    private static int RunTarget(Args a)
    {
        if (a.Imatrix is null) throw new InvalidInputException("--target-bpw and --target-size need --imatrix (the planner weighs errors by it)");
        var pos = a.Positionals;
        if (pos.Length > 2) throw new InvalidInputException("with a target the arguments are IN OUT [NTHREADS]: no file type");
        if (pos.Length == 2 && !int.TryParse(pos[1], NumberStyles.None, CultureInfo.InvariantCulture, out _))
            throw new InvalidInputException($"with a target the arguments are IN OUT [NTHREADS]: '{pos[1]}' is not a thread count");
        int threads = a.Threads ?? (pos.Length == 2 ? int.Parse(pos[1], CultureInfo.InvariantCulture) : Squeeze.Numerics.Workers.DefaultThreads);
        var unsupported = new List<string>();
        if (a.Pure) unsupported.Add("--pure");
        if (a.TensorTypeFiles.Length > 0) unsupported.Add("--tensor-type-file");
        if (a.Prune is not null) unsupported.Add("--prune-layers");
        if (a.Overrides.Length > 0) unsupported.Add("--override-kv");
        if (a.Include.Length + a.Exclude.Length > 0) unsupported.Add("--include-weights/--exclude-weights");
        if (a.DryRun) unsupported.Add("--dry-run");
        if (a.LeaveOutput) unsupported.Add("--leave-output-tensor");
        if (a.OutputType is not null) unsupported.Add("--output-tensor-type (pin it: --tensor-type output=TYPE)");
        if (a.EmbeddingType is not null) unsupported.Add("--token-embedding-type (pin it: --tensor-type token_embd=TYPE)");
        if (a.AllowRequantize) unsupported.Add("--allow-requantize");
        if (unsupported.Count > 0) throw new InvalidInputException($"{string.Join(", ", unsupported)} cannot be combined with a target yet (use squeeze plan -o PLAN.txt, then quantize --tensor-type-file)");
        return PlanCommand.Run(new PlanCommand.Args(a.Input, a.Imatrix, a.TargetBpw, a.TargetSize, a.PlanText, null, a.TensorTypes,
            null, null, new FileInfo(pos[0]), 8, 0, null, false, threads));
    }

    private static string FileTypeList() => string.Join(", ", LlamaFileTypes.All.Where(r => r.IsListed).Select(r => r.Name)) + ", COPY";

    private static IReadOnlyList<int> ParsePrune(string? text)
    {
        if (text is null) return [];
        var layers = new List<int>();
        foreach (var part in text.Split(','))
        {
            if (!int.TryParse(part.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int id))
                throw new InvalidInputException($"--prune-layers: invalid layer id '{part}'");
            layers.Add(id);
        }
        return layers;
    }

    private static void Render(FileInfo input, QuantizeTarget target, string mode, QuantizeSummary s, ImportanceMatrix? importance, QuantizationPlan plan)
    {
        var console = AnsiConsole.Console;
        var table = new Table().Title(Markup.Escape($"{input.Name} -> {Path.GetFileName(s.OutputPath)} ({target}, {mode})"))
            .AddColumn("type").AddColumn(new TableColumn("tensors").RightAligned()).AddColumn(new TableColumn("parameters").RightAligned())
            .AddColumn(new TableColumn("bytes").RightAligned()).AddColumn(new TableColumn("bpw").RightAligned());
        foreach (var t in s.ByType)
            table.AddTextRow(t.Type.Name(), t.Tensors.ToString(CultureInfo.InvariantCulture), Format.Count(t.Elements), Format.Bytes(t.Bytes), Format.Bpw(t.BitsPerWeight));
        table.AddTextRow("total", s.Tensors.Count.ToString(CultureInfo.InvariantCulture), Format.Count(s.Elements), Format.Bytes(s.OutputTensorBytes), Format.Bpw(s.BitsPerWeight));
        console.Write(table);
        console.WriteLine($"model size {Format.Bytes(s.InputTensorBytes)} ({Format.Bpw(s.InputBitsPerWeight)} bpw) -> {Format.Bytes(s.OutputTensorBytes)} ({Format.Bpw(s.BitsPerWeight)} bpw); " +
            $"file {Format.Bytes(s.OutputFileBytes)}; {s.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
        Notes(console, plan);
        if (importance is not null)
            console.WriteLine($"imatrix: {importance.EntryCount} entries; importance weights given to {s.Tensors.Count(t => t.UsedImatrix)} tensors");
    }

    private static void Notes(IAnsiConsole console, QuantizationPlan plan)
    {
        if (plan.Dropped.Count > 0)
            console.WriteLine($"pruned: {plan.Dropped.Count} tensors removed; block count now {plan.BlockCount?.Value}");
        if (plan.FallbackCount > 0)
            console.WriteLine($"{plan.FallbackCount} of {plan.Tensors.Count} tensors needed a fallback type (rows not a multiple of the block size)");
    }

    /// <summary>A ggml type name, ignoring case, as llama-quantize's <c>parse_ggml_type</c> reads it.</summary>
    private static GgmlType? ParseGgmlType(string? text, string option)
    {
        if (text is null) return null;
        if (GgmlTypes.TryParse(text, out var t) && TensorTypeRule.IsWeightType(t)) return t;
        throw new InvalidInputException($"{option}: '{text}' is not a ggml type a tensor can be stored in");
    }

    private static void RenderPlan(FileInfo input, QuantizeTarget target, string mode, QuantizationPlan plan, ImportanceMatrix? importance)
    {
        var console = AnsiConsole.Console;
        var table = new Table().Title(Markup.Escape($"{input.Name} as {target}, {mode} (dry run)"))
            .AddColumn(new TableColumn("tensor").NoWrap()).AddColumn("shape").AddColumn("type").AddColumn(new TableColumn("bytes").RightAligned()).AddColumn("reason");
        foreach (var t in plan.Tensors)
            table.AddTextRow(t.Name, string.Join(" x ", t.Tensor.Shape), t.Converts ? $"{t.Tensor.Type.Name()} -> {t.TargetType.Name()}" : t.TargetType.Name(),
                Format.Bytes(t.OutputBytes), t.Reason);
        console.Write(table);

        var layers = new Table().Title("per layer")
            .AddColumn("layer").AddColumn(new TableColumn("tensors").RightAligned()).AddColumn(new TableColumn("parameters").RightAligned())
            .AddColumn(new TableColumn("before").RightAligned()).AddColumn(new TableColumn("after").RightAligned()).AddColumn(new TableColumn("bpw").RightAligned());
        foreach (var l in plan.ByLayer())
            layers.AddTextRow(l.Layer < 0 ? "other" : l.Layer.ToString(CultureInfo.InvariantCulture), l.Tensors.ToString(CultureInfo.InvariantCulture),
                Format.Count(l.Elements), Format.Bytes(l.InputBytes), Format.Bytes(l.OutputBytes), Format.Bpw(l.BitsPerWeight));
        console.Write(layers);

        long elements = Math.Max(1, plan.Elements);
        console.WriteLine($"model size {Format.Bytes(plan.InputBytes)} ({Format.Bpw(plan.InputBytes * 8.0 / elements)} bpw) -> " +
            $"{Format.Bytes(plan.OutputBytes)} ({Format.Bpw(plan.BitsPerWeight)} bpw)");
        Notes(console, plan);
        var needs = plan.Tensors.Where(t => t.RequiresImatrix).ToList();
        if (needs.Count > 0 && importance is not { EntryCount: > 0 })
            console.WriteLine($"{needs.Count} tensors need an imatrix (--imatrix) for this type: quantizing would be refused without one");
    }

    /// <summary>Reports synchronously on the quantizer's thread (System.Progress would post to the thread pool).</summary>
    private sealed class Reporter(Action<QuantizeProgress> report) : IProgress<QuantizeProgress>
    {
        public void Report(QuantizeProgress value) => report(value);
    }
}
