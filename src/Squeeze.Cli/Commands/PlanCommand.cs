using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Quantization;
using Squeeze.Quantization.Planning;
using Squeeze.Quants;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze plan -m MODEL --imatrix FILE (--target-bpw X | --target-size N) [-f TEXT] [--candidates T,..] [--pin P=T ...]
/// [-o PLAN.txt] [--heatmap PNG] [--quantize OUT.gguf] [--threads N]</c>: chooses every tensor's type for a size budget
/// from measured errors, and writes the plan as a llama-quantize <c>--tensor-type-file</c>.
/// </summary>
internal static class PlanCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model", "-m") { Description = "The model to plan (GGUF, F32/F16/BF16 weights).", Required = true };
        var imatrix = new Option<FileInfo>("--imatrix") { Description = "Importance matrix (llama.cpp's GGUF or legacy .dat format).", Required = true };
        var bpw = new Option<double?>("--target-bpw") { Description = "Bits per weight of the whole file's tensors (as llama-quantize reports it)." };
        var size = new Option<string?>("--target-size") { Description = "File size: bytes, or N with K, M, G (binary multiples)." };
        var text = new Option<FileInfo?>("--file", "-f") { Description = "Calibration text for the forward-pass probes that turn errors into KL divergence (recommended; not your evaluation text)." };
        var candidates = new Option<string?>("--candidates") { Description = "Comma-separated types to choose from (default: all i-quants, k-quants, legacy quants, F16, BF16)." };
        var pins = new Option<string[]>("--pin") { Description = "PATTERN=TYPE: tensors whose name matches the regex get TYPE, charged to the budget (repeatable; first match wins)." };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write the plan as a llama-quantize --tensor-type-file." };
        var heatmap = new Option<FileInfo?>("--heatmap") { Description = "Write a PNG heatmap of bits per weight, layers x tensor kinds." };
        var quantize = new Option<FileInfo?>("--quantize") { Description = "Also quantize the model as planned into this GGUF file." };
        var chunks = new Option<int>("--chunks") { Description = "Calibration chunks for the probes.", DefaultValueFactory = _ => 8 };
        var ctx = new Option<int>("--ctx") { Description = "Tokens per calibration chunk (default: the model's context, at most 512)." };
        var cacheDir = new Option<DirectoryInfo?>("--cache-dir") { Description = "Folder of the error cache (default: ~/.cache/squeeze/plan)." };
        var noCache = new Option<bool>("--no-cache") { Description = "Measure again; do not read or write the cache." };
        var probes = new Option<string>("--probes")
        {
            Description = "Forward-pass probes: all (every candidate of every tensor), points (two per tensor and a curve), or auto (all when the work is small).",
            DefaultValueFactory = _ => "auto",
        };
        var threads = new Option<int>("--threads", "-t") { Description = "Worker threads.", DefaultValueFactory = _ => Squeeze.Numerics.Workers.DefaultThreads };
        var command = new Command("plan", "Choose each tensor's type for a size budget from measured errors (writes a --tensor-type-file).")
        {
            model, imatrix, bpw, size, text, candidates, pins, output, heatmap, quantize, chunks, ctx, cacheDir, noCache, threads, probes,
        };
        command.SetAction(p => CommandRunner.Run(() => Run(new Args(
            p.GetRequiredValue(model), p.GetRequiredValue(imatrix), p.GetValue(bpw), p.GetValue(size), p.GetValue(text), p.GetValue(candidates),
            p.GetValue(pins) ?? [], p.GetValue(output), p.GetValue(heatmap), p.GetValue(quantize), p.GetValue(chunks), p.GetValue(ctx),
            p.GetValue(cacheDir), p.GetValue(noCache), p.GetValue(threads), p.GetValue(probes) switch
            {
                "all" => true,
                "points" => false,
                "auto" => null,
                var v => throw new InvalidInputException($"--probes must be auto, all or points, not '{v}'"),
            }))));
        return command;
    }

    internal sealed record Args(FileInfo Model, FileInfo Imatrix, double? Bpw, string? Size, FileInfo? Text, string? Candidates, string[] Pins,
        FileInfo? Output, FileInfo? Heatmap, FileInfo? Quantize, int Chunks, int Ctx, DirectoryInfo? CacheDir, bool NoCache, int Threads, bool? ProbeAll = null);

    internal static int Run(Args a)
    {
        if (a.Bpw is null == (a.Size is null)) throw new InvalidInputException("give exactly one of --target-bpw and --target-size");
        var target = a.Bpw is { } b ? PlanTarget.Bpw(b) : PlanTarget.ParseSize(a.Size!);
        if (a.Threads < 1) throw new InvalidInputException($"--threads must be at least 1, not {a.Threads}");
        if (a.Chunks < 1) throw new InvalidInputException($"--chunks must be at least 1, not {a.Chunks}");
        if (a.Ctx < 0 || a.Ctx == 1) throw new InvalidInputException($"--ctx must be at least 2, not {a.Ctx}");
        if (!a.Model.Exists) throw new FileNotFoundException($"file not found: {a.Model.FullName}", a.Model.FullName);
        if (!a.Imatrix.Exists) throw new FileNotFoundException($"file not found: {a.Imatrix.FullName}", a.Imatrix.FullName);
        if (a.Text is { Exists: false }) throw new FileNotFoundException($"file not found: {a.Text.FullName}", a.Text.FullName);
        var pins = a.Pins.Select(TensorPin.Parse).ToList();
        IReadOnlyList<GgmlType>? candidates = null;
        if (a.Candidates is not null)
        {
            var list = new List<GgmlType>();
            foreach (var s in a.Candidates.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                list.Add(GgmlTypes.TryParse(s, out var t) && PlanCandidates.Default.Contains(t) ? t
                    : throw new InvalidInputException($"--candidates: '{s}' is not one of {string.Join(", ", PlanCandidates.Default.Select(x => x.Name()))}"));
            if (list.Count == 0) throw new InvalidInputException("--candidates is empty");
            candidates = list;
        }
        var importance = ImportanceMatrix.Load(a.Imatrix.ToString());

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            using var file = GgufFile.Open(a.Model.FullName);
            var chunksList = Array.Empty<int[]>() as IReadOnlyList<int[]>;
            if (a.Text is not null)
            {
                int context = a.Ctx > 0 ? a.Ctx : Math.Min(512, Squeeze.Models.Hyperparameters.Read(file).ContextLength);
                chunksList = KldCalibrator.Chunks(file, File.ReadAllText(a.Text.FullName), context, a.Chunks);
            }
            string? cache = a.NoCache ? null : (a.CacheDir?.FullName ?? DefaultCacheDirectory());
            var options = new MeasureOptions { Imatrix = importance, Candidates = candidates, CalibrationChunks = chunksList, Threads = a.Threads, CacheDirectory = cache, ProbeAll = a.ProbeAll };

            (Allocation Allocation, ErrorTable Table) result;
            if (CommandRunner.Interactive)
            {
                result = AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("measuring", maxValue: 1.0);
                        var progress = new Reporter(p => { task.Description = Markup.Escape(p.Stage); task.Value = p.Total == 0 ? 1 : (double)p.Done / p.Total; });
                        var r = BitPlanner.Plan(file, target, options, pins, progress, cancel.Token);
                        task.Value = 1.0;
                        return r;
                    });
            }
            else result = BitPlanner.Plan(file, target, options, pins, null, cancel.Token);
            var (allocation, table) = result;

            if (a.Output is not null)
            {
                var bytes = System.Text.Encoding.UTF8.GetBytes(allocation.TensorTypeFile());
                Squeeze.IO.AtomicFile.Write(a.Output.FullName, s => s.Write(bytes));
            }
            if (a.Heatmap is not null) allocation.WriteHeatmap(a.Heatmap.FullName, $"{a.Model.Name} planned for {target}");
            QuantizeSummary? summary = null;
            if (a.Quantize is not null)
                summary = ModelQuantizer.Quantize(file, allocation.Plan, a.Quantize.FullName, new QuantizeOptions { Imatrix = importance, Threads = a.Threads }, null, cancel.Token);
            Render(a, allocation, table, summary);
            return CommandRunner.Ok;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static string DefaultCacheDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "squeeze", "plan");
    }

    private static void Render(Args a, Allocation allocation, ErrorTable errors, QuantizeSummary? summary)
    {
        var console = AnsiConsole.Console;
        var inv = CultureInfo.InvariantCulture;
        double total = allocation.PredictedKld;
        var table = new Table().Title(Markup.Escape($"{a.Model.Name} planned for {allocation.Target}"))
            .AddColumn(new TableColumn("tensor").NoWrap()).AddColumn("type").AddColumn(new TableColumn("bytes").RightAligned())
            .AddColumn(new TableColumn("bpw").RightAligned()).AddColumn(new TableColumn("predicted KLD").RightAligned()).AddColumn(new TableColumn("share").RightAligned());
        foreach (var t in allocation.Tensors.Where(t => t.Status != "kept"))
            table.AddTextRow(t.Name, t.Type.Name() + (t.Status == "pinned" ? " (pinned)" : ""), Format.Bytes(t.Bytes), Format.Bpw(t.BitsPerWeight),
                double.IsFinite(t.PredictedKld) ? t.PredictedKld.ToString("0.000e+0", inv) : "?",
                double.IsFinite(t.PredictedKld) && total > 0 ? (100 * t.PredictedKld / total).ToString("0.0", inv) + "%" : "");
        console.Write(table);
        var layers = new Table().Title("bits per weight per layer").AddColumn("layer").AddColumn(new TableColumn("bytes").RightAligned()).AddColumn(new TableColumn("bpw").RightAligned());
        foreach (var (layer, bits, bytes) in allocation.LayerBits())
            layers.AddTextRow(layer < 0 ? "outside blocks" : layer.ToString(inv), Format.Bytes(bytes), Format.Bpw(bits));
        console.Write(layers);
        console.WriteLine(string.Create(inv, $"tensors {Format.Bytes(allocation.TensorBytes)} ({allocation.BitsPerWeight:0.0000} bpw) for a budget of {Format.Bytes(allocation.Budget)}; predicted KLD {total:0.000000}; {(allocation.Exact ? "optimal (exact solver)" : "greedy/Lagrangian solution")}"));
        console.WriteLine(errors.FromCache
            ? $"errors from the cache ({errors.Key})"
            : string.Create(inv, $"errors measured in {errors.MeasureTime.TotalSeconds:0.0} s: {errors.Tensors.Sum(t => t.Candidates.Count)} candidates, {errors.Tensors.Sum(t => t.Probes.Count)} forward probes on {errors.CalibrationTokens} tokens"));
        if (!errors.Calibrated) console.WriteLine("no calibration text (-f): tensors are compared by weighted error only, not by their effect on the output");
        console.WriteLine($"file type {allocation.Plan.FileType.Name()}: llama-quantize --imatrix {a.Imatrix} --tensor-type-file {(a.Output?.ToString() ?? "PLAN.txt")} {a.Model} OUT.gguf {allocation.Plan.FileType.Name()}");
        if (summary is not null) console.WriteLine($"wrote {summary.OutputPath}: {Format.Bytes(summary.OutputFileBytes)}");
    }

    private sealed class Reporter(Action<MeasureProgress> report) : IProgress<MeasureProgress>
    {
        public void Report(MeasureProgress value) => report(value);
    }
}
