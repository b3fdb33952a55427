using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;
using Squeeze.IO;
using Squeeze.Pipeline;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze run PIPELINE [--dry-run]</c>: the whole quantization process of a pipeline file (convert, base
/// perplexity and logits, imatrix and statistics, each candidate quantized and measured, the report) as one resumable
/// job. Every step is a <c>squeeze</c> command run as a child process, cached by the hash of its inputs and settings.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("pipeline") { Description = "The pipeline file (YAML or JSON)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "List the steps and which are cached; run nothing." };
        var command = new Command("run", "Run a quantization pipeline: convert, measure, imatrix, quantize candidates, evaluate, report.") { file, dryRun };
        command.SetAction(p => CommandRunner.Run(() =>
        {
            var spec = PipelineSpec.Load(p.GetRequiredValue(file).FullName);
            return Execute(spec, spec.Resolve(spec.Output), p.GetValue(dryRun));
        }));
        return command;
    }

    /// <summary>Runs (or lists) a validated pipeline; shared with <c>squeeze demo</c>.</summary>
    internal static int Execute(PipelineSpec spec, string output, bool dryRun)
    {
        // Deterministic builds give the same module ids for the same source, so only a changed Squeeze invalidates the cache.
        var tool = string.Join('+', new[] { typeof(Program).Assembly, typeof(PipelineRunner).Assembly }.Select(a => a.ManifestModule.ModuleVersionId));
        var runner = new PipelineRunner(output, tool);
        var steps = PipelinePlan.Build(spec, output, ChildProcessExecutor);
        if (dryRun)
        {
            var table = new Table().AddColumns("#", "step", "does");
            for (int i = 0; i < steps.Count; i++) table.AddRow($"{i + 1}", steps[i].Name, Markup.Escape(steps[i].Title));
            AnsiConsole.Write(table);
            return CommandRunner.Ok;
        }

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            PipelineResult result;
            if (CommandRunner.Interactive)
            {
                result = null!;
                AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                    .Start(ctx =>
                    {
                        var overall = ctx.AddTask("[bold]pipeline[/]", maxValue: steps.Count);
                        ProgressTask? current = null;
                        result = runner.Run(steps, e =>
                        {
                            switch (e.State)
                            {
                                case StepState.Running when current is null || current.Description != Describe(e):
                                    current?.StopTask();
                                    current = ctx.AddTask(Describe(e), maxValue: 1);
                                    current.IsIndeterminate = true;
                                    break;
                                case StepState.Done or StepState.Cached:
                                    current?.StopTask();
                                    current = null;
                                    if (e.State == StepState.Cached) ctx.AddTask($"{Describe(e)} [grey](cached)[/]", maxValue: 1).Value = 1;
                                    else ctx.AddTask($"{Describe(e)} [green]done[/]", maxValue: 1).Value = 1;
                                    overall.Value = e.Index + 1;
                                    break;
                            }
                        }, cancel.Token);
                    });
            }
            else
            {
                var clock = new Dictionary<string, Stopwatch>();
                result = runner.Run(steps, e =>
                {
                    string name = $"[{e.Index + 1}/{e.Count}] {e.Step.Name}";
                    switch (e.State)
                    {
                        case StepState.Running when !clock.ContainsKey(e.Step.Name):
                            clock[e.Step.Name] = Stopwatch.StartNew();
                            Console.Out.WriteLine($"{name}: {e.Step.Title} ...");
                            break;
                        case StepState.Cached: Console.Out.WriteLine($"{name}: cached"); break;
                        case StepState.Done: Console.Out.WriteLine($"{name}: done in {clock[e.Step.Name].Elapsed.TotalSeconds:F1} s"); break;
                        case StepState.Failed: Console.Out.WriteLine($"{name}: failed"); break;
                    }
                }, cancel.Token);
            }
            Console.Out.WriteLine($"{result.Ran.Count} steps ran, {result.Cached.Count} cached, in {result.Elapsed.TotalSeconds:F1} s");
            var report = Path.Combine(output, "report", "report.md");
            if (File.Exists(report))
            {
                Console.Out.WriteLine();
                Console.Out.Write(File.ReadAllText(report));
                Console.Out.WriteLine();
                Console.Out.WriteLine($"report: {report}");
            }
            Console.Out.WriteLine($"log: {Path.Combine(output, "pipeline.log")}");
            return CommandRunner.Ok;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static string Describe(StepEvent e) => $"{e.Index + 1}/{e.Count} {Markup.Escape(e.Step.Title)}";

    /// <summary>
    /// Runs <c>squeeze ARGS</c> as a child process of the same build (so a crash or Ctrl+C in a step never takes the
    /// pipeline's state with it); its output goes to <c>logs/STEP.log</c>, or standard output to the step's file.
    /// </summary>
    internal static int ChildProcessExecutor(IReadOnlyList<string> arguments, string? stdoutPath, StepContext context)
    {
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var (program, prefix) = Self();
        start.FileName = program;
        foreach (var a in prefix) start.ArgumentList.Add(a);
        foreach (var a in arguments) start.ArgumentList.Add(a);
        // The child prints plain text: its progress bars would only garble the log.
        start.Environment["NO_COLOR"] = "1";
        start.Environment["TERM"] = "dumb";
        Directory.CreateDirectory(context.PathOf("logs"));
        string logPath = context.PathOf(Path.Combine("logs", context.Step + ".log"));
        context.Log("squeeze " + string.Join(' ', arguments.Select(Quote)));
        using var log = new StreamWriter(logPath, append: false) { AutoFlush = true };
        log.WriteLine("$ squeeze " + string.Join(' ', arguments.Select(Quote)));
        var captured = new MemoryStream();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var stderr = Task.Run(() =>
        {
            string? line;
            while ((line = process.StandardError.ReadLine()) is not null) lock (log) log.WriteLine(line);
        });
        var stdout = Task.Run(() =>
        {
            if (stdoutPath is not null) process.StandardOutput.BaseStream.CopyTo(captured);
            else
            {
                string? line;
                while ((line = process.StandardOutput.ReadLine()) is not null) lock (log) log.WriteLine(line);
            }
        });
        using (context.Cancellation.Register(() => { try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } }))
        {
            process.WaitForExit();
            Task.WaitAll(stderr, stdout);
        }
        context.Cancellation.ThrowIfCancellationRequested();
        if (stdoutPath is not null && process.ExitCode == 0)
        {
            var bytes = captured.ToArray();
            AtomicFile.Write(stdoutPath, s => s.Write(bytes));
            lock (log) log.WriteLine($"(standard output: {bytes.Length} bytes to {Path.GetRelativePath(context.OutputFolder, stdoutPath)})");
        }
        return process.ExitCode;
    }

    private static string Quote(string a) => a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+".Contains(c)) ? a : $"'{a.Replace("'", "'\\''")}'";

    /// <summary>How to start this same squeeze: the apphost itself, or <c>dotnet squeeze.dll</c>.</summary>
    private static (string Program, string[] Prefix) Self()
    {
        var dll = typeof(Program).Assembly.Location;
        var process = Environment.ProcessPath;
        var name = Path.GetFileName(process);
        if (process is not null && name is "squeeze" or "squeeze.exe") return (process, []);
        if (process is not null && name is "dotnet" or "dotnet.exe") return (process, [dll]);
        // Hosted elsewhere (a test host): the dotnet executable of the running runtime, DOTNET_ROOT/shared/NAME/VERSION/ up three.
        var root = Path.GetFullPath(Path.Combine(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var host = Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
        return (File.Exists(host) ? host : "dotnet", [dll]);
    }
}
