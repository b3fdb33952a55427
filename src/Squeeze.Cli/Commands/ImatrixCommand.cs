using System.CommandLine;
using System.Globalization;
using System.Text;
using Spectre.Console;
using Squeeze.Imatrix;
using Squeeze.Models;
using Squeeze.Tokenizers;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze imatrix -m MODEL -f CALIB.txt [-o imatrix.gguf] ...</c>: collects an importance matrix as llama-imatrix does;
/// with <c>--in-file</c> and no <c>-f</c> it merges imatrices; with <c>--show-statistics</c> it prints their statistics.
/// </summary>
internal static class ImatrixCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo?>("--model", "-m") { Description = "The GGUF model to run." };
        var file = new Option<FileInfo?>("--file", "-f") { Description = "The calibration text." };
        var output = new Option<string>("--output", "-o") { Description = "The imatrix to write.", DefaultValueFactory = _ => "imatrix.gguf" };
        var ctx = new Option<int>("--ctx-size", "-c") { Description = "Tokens per chunk.", DefaultValueFactory = _ => 512 };
        var batch = new Option<int>("--batch-size", "-b") { Description = "Tokens per batch (batch / ctx chunks are decoded side by side).", DefaultValueFactory = _ => 2048 };
        var chunks = new Option<int>("--chunks") { Description = "At most this many chunks (-1: all).", DefaultValueFactory = _ => -1 };
        var skip = new Option<int>("--chunk") { Description = "Skip this many chunks at the start of the text." };
        var outFreq = new Option<int>("--output-frequency") { Description = "Save the imatrix every N chunks.", DefaultValueFactory = _ => 10 };
        var saveFreq = new Option<int>("--save-frequency") { Description = "Also keep a snapshot OUT.at_N every N chunks (0: never)." };
        var processOutput = new Option<bool>("--process-output") { Description = "Record output.weight too." };
        var noPpl = new Option<bool>("--no-ppl") { Description = "Do not compute the perplexity of each chunk." };
        var parseSpecial = new Option<bool>("--parse-special") { Description = "Turn the text of control tokens into those tokens." };
        var inFiles = new Option<string[]>("--in-file") { Description = "An imatrix to merge in (repeatable); without -f the files are only merged.", AllowMultipleArgumentsPerToken = false };
        var format = new Option<string>("--output-format") { Description = "gguf (default) or dat (llama.cpp's legacy format).", DefaultValueFactory = _ => "gguf" };
        format.AcceptOnlyFromAmong("gguf", "dat");
        var threads = new Option<int>("--threads", "-t") { Description = "CPU threads (default: physical cores)." };
        var resume = new Option<bool>("--resume") { Description = "Continue the collection saved in --output (GGUF) where it stopped." };
        var showStats = new Option<bool>("--show-statistics") { Description = "Print the statistics of the one --in-file imatrix instead of collecting." };
        var stats = StatsCommand.StatsOptions.Create();

        var command = new Command("imatrix", "Collect an importance matrix from calibration text (llama-imatrix), merge imatrices, or show their statistics.")
        {
            model, file, output, ctx, batch, chunks, skip, outFreq, saveFreq, processOutput, noPpl, parseSpecial, inFiles, format, threads, resume, showStats,
        };
        stats.AddTo(command);
        command.SetAction(p => CommandRunner.Run(() =>
        {
            var inputs = p.GetValue(inFiles) ?? [];
            if (p.GetValue(showStats))
            {
                if (inputs.Length != 1) throw new InvalidInputException("--show-statistics needs exactly one --in-file imatrix");
                return StatsCommand.Show(inputs[0], stats.Read(p));
            }
            var o = new ImatrixOptions
            {
                ContextSize = p.GetValue(ctx),
                BatchSize = p.GetValue(batch),
                Chunks = p.GetValue(chunks),
                SkipChunks = p.GetValue(skip),
                OutputFrequency = p.GetValue(outFreq),
                SaveFrequency = p.GetValue(saveFreq),
                ProcessOutput = p.GetValue(processOutput),
                ComputePerplexity = !p.GetValue(noPpl),
                Format = p.GetValue(format) == "dat" ? ImatrixFormat.Legacy : ImatrixFormat.Gguf,
                Threads = p.GetValue(threads),
                OutputPath = p.GetRequiredValue(output),
            };
            return Run(p.GetValue(model), p.GetValue(file), inputs, o, p.GetValue(parseSpecial), p.GetValue(resume));
        }));
        return command;
    }

    private static int Run(FileInfo? modelPath, FileInfo? calibration, string[] inFiles, ImatrixOptions o, bool parseSpecial, bool resume)
    {
        if (o.ContextSize <= 0) throw new InvalidInputException("the imatrix needs --ctx-size above 0");
        if (o.Threads < 0) throw new InvalidInputException($"--threads must be at least 1, not {o.Threads}");
        int nSeq = Math.Max(1, o.BatchSize / o.ContextSize);
        string outPath = o.OutputPath!;
        var console = AnsiConsole.Console;

        if (calibration is null)
        {
            if (resume) throw new InvalidInputException("--resume needs the calibration text (-f)");
            if (inFiles.Length == 0) throw new InvalidInputException("give calibration text with -f (and a model with -m), or imatrices to merge with --in-file");
            var merged = new ImatrixData(o.ContextSize);
            foreach (var f in inFiles) merged.Merge(ImatrixFile.Read(f));
            merged.Write(outPath, o.Format);
            console.WriteLine($"{(inFiles.Length > 1 ? "merged" : "saved")} {inFiles.Length} imatrix file(s) into {outPath}: {merged.Entries.Count} entries, {merged.ChunkCount} chunks");
            return CommandRunner.Ok;
        }
        if (modelPath is null) throw new InvalidInputException("collecting an imatrix needs the model (-m)");
        if (!calibration.Exists) throw new FileNotFoundException($"file not found: {calibration.FullName}", calibration.FullName);
        if (resume && o.Format != ImatrixFormat.Gguf) throw new InvalidInputException("--resume needs the GGUF output format (a .dat file cannot hold where the run stopped)");
        if (resume && inFiles.Length > 0) throw new InvalidInputException("--resume continues from the saved file, which already holds the --in-file imatrices: drop --in-file");

        using var m = TransformerModel.Load(modelPath.FullName);
        var tokenizer = Tokenizer.FromGguf(m.File);
        var text = File.ReadAllBytes(calibration.FullName);
        // llama.cpp's -f drops one trailing newline.
        int length = text.Length > 0 && text[^1] == (byte)'\n' ? text.Length - 1 : text.Length;
        var tokens = tokenizer.Encode(text.AsSpan(0, length), addSpecial: true, parseSpecial: parseSpecial);
        int? bos = tokenizer.AddBos ? tokenizer.Bos : null;
        string dataset = calibration.ToString();

        ImatrixData data;
        ImatrixRunState? state = null;
        if (resume)
        {
            if (!File.Exists(outPath)) throw new FileNotFoundException($"nothing to resume: {outPath} does not exist", outPath);
            (data, state) = ImatrixRun.Resume(ImatrixFile.Read(outPath), dataset, o.ContextSize);
            console.WriteLine($"resuming {outPath} after chunk {state.ChunksDone}");
        }
        else
        {
            data = new ImatrixData(o.ContextSize);
            foreach (var f in inFiles) data.Merge(ImatrixFile.Read(f));
            data.Dataset = dataset;
        }

        var (nChunk, _) = ImatrixRun.Plan(tokens, o);
        console.WriteLine($"{modelPath.Name}: {tokens.Length} tokens; computing over {nChunk} chunks, n_ctx={o.ContextSize}, batch_size={Math.Min(o.BatchSize, nSeq * o.ContextSize)}, n_seq={nSeq}");

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        ImatrixResult result;
        var ppl = new StringBuilder();
        try
        {
            if (CommandRunner.Interactive)
            {
                result = AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("collecting", maxValue: 1.0);
                        var clock = System.Diagnostics.Stopwatch.StartNew();
                        var r = ImatrixRun.Collect(m, tokens, bos, data, o, new Reporter(p =>
                        {
                            foreach (var (chunk, value) in p.ChunkPerplexities) ppl.Append(CultureInfo.InvariantCulture, $"[{chunk}]{value:0.0000},");
                            double speed = p.TokensDone / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
                            string last = p.ChunkPerplexities.Count > 0 ? $", PPL {p.ChunkPerplexities[^1].Perplexity.ToString("0.0000", CultureInfo.InvariantCulture)}" : "";
                            task.Description = Markup.Escape($"chunk {p.ChunksDone}/{p.ChunkTotal}, {speed.ToString("0", CultureInfo.InvariantCulture)} tokens/s{last}");
                            task.Value = p.TokensTotal == 0 ? 1 : (double)p.TokensDone / p.TokensTotal;
                        }), cancel.Token, state);
                        task.Value = 1.0;
                        return r;
                    });
                if (ppl.Length > 0) console.WriteLine(ppl.ToString());
            }
            else
            {
                result = ImatrixRun.Collect(m, tokens, bos, data, o, new Reporter(p =>
                {
                    foreach (var (chunk, value) in p.ChunkPerplexities) Console.Out.Write(string.Create(CultureInfo.InvariantCulture, $"[{chunk}]{value:0.0000},"));
                    if (p.ChunkPerplexities.Count == 0) Console.Out.Write(string.Create(CultureInfo.InvariantCulture, $"[{p.ChunksDone}/{p.ChunkTotal}]"));
                    Console.Out.Flush();
                }), cancel.Token, state);
                Console.Out.WriteLine();
            }
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }

        if (result.Cancelled)
        {
            console.WriteLine($"cancelled after {result.ChunksDone} of {result.ChunkTotal} chunks; saved {outPath} (continue with --resume)");
            return CommandRunner.UserError;
        }
        data.Write(outPath, o.Format);
        if (result.Perplexity is double pp)
            console.WriteLine(result.PerplexityError is double err
                ? string.Create(CultureInfo.InvariantCulture, $"Final estimate: PPL = {pp:0.0000} +/- {err:0.00000}")
                : "Unexpected negative standard deviation of log(prob)");
        foreach (var partial in data.PartialEntries)
            console.WriteLine($"warning: entry '{partial}' has partial data (some experts were never routed to)");
        double tps = result.TokensProcessed / Math.Max(1e-9, result.Elapsed.TotalSeconds);
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"saved {outPath} ({(o.Format == ImatrixFormat.Gguf ? "gguf" : "dat")}): {data.Entries.Count} entries, {data.ChunkCount} chunks; {result.TokensProcessed} tokens in {result.Elapsed.TotalSeconds:0.0} s ({tps:0} tokens/s)"));
        return CommandRunner.Ok;
    }

    private sealed class Reporter(Action<ImatrixProgress> report) : IProgress<ImatrixProgress>
    {
        public void Report(ImatrixProgress value) => report(value);
    }
}
