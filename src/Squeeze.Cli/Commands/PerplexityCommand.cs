using System.CommandLine;
using System.Globalization;
using System.Text;
using Spectre.Console;
using Squeeze.Evaluation;
using Squeeze.Models;
using Squeeze.Numerics;
using Squeeze.Tokenizers;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze perplexity -m MODEL -f TEXT [-c 512] [-b 2048] [--chunks N] [--kl-divergence-base FILE [--kl-divergence]] [-t N] [--json FILE]</c>:
/// llama-perplexity's perplexity, KL-divergence base file and KL-divergence statistics, printed as llama-perplexity
/// prints them. Each mode is one option group here and one library class; the task modes (HellaSwag, WinoGrande, multiple
/// choice) are <see cref="TaskOptions"/>, added in <see cref="Create"/> and tried first in <see cref="Run"/>.
/// </summary>
internal static class PerplexityCommand
{
    /// <summary>The settings every mode shares.</summary>
    internal sealed record Common(FileInfo Model, FileInfo? Text, int Context, int Batch, int Chunks, int Threads, FileInfo? Json, int Stride = 0, int OutputType = 0)
    {
        public PerplexityOptions Options => new() { ContextSize = Context, BatchSize = Batch, Chunks = Chunks, Threads = Threads, Stride = Stride };
    }

    public static Command Create()
    {
        var model = new Option<FileInfo>("--model", "-m") { Description = "The GGUF model to evaluate.", Required = true };
        var file = new Option<FileInfo?>("--file", "-f") { Description = "The text to evaluate (e.g. wiki.test.raw); one trailing newline is dropped, as llama.cpp does." };
        var context = new Option<int>("--ctx-size", "-c") { Description = "Tokens per chunk (n_ctx).", DefaultValueFactory = _ => 512 };
        var batch = new Option<int>("--batch-size", "-b") { Description = "Tokens per batch (n_batch); a multiple of the context puts several chunks in one batch.", DefaultValueFactory = _ => 2048 };
        var chunks = new Option<int>("--chunks") { Description = "At most this many chunks (-1 = all).", DefaultValueFactory = _ => -1 };
        var threads = new Option<int>("--threads", "-t") { Description = "Worker threads.", DefaultValueFactory = _ => Workers.DefaultThreads };
        var json = new Option<FileInfo?>("--json") { Description = "Also save the results as JSON (for squeeze report)." };
        var klBase = new Option<FileInfo?>("--kl-divergence-base", "--save-all-logits")
        {
            Description = "Without --kl-divergence: write the base model's log-probabilities to this file (llama.cpp's format). With it: read them from this file.",
        };
        var kl = new Option<bool>("--kl-divergence") { Description = "Compare the model with the base file given by --kl-divergence-base (the file's tokens are used; -f is not needed)." };
        var stride = new Option<int>("--ppl-stride")
        {
            Description = "Strided perplexity (llama-perplexity's perplexity_v2): windows of -c + stride/2 tokens (rounded up to 256) every N tokens, scoring the last N of each; needs -b below 2 x -c. 0 = chunked.",
        };
        var outputType = new Option<int>("--ppl-output-type")
        {
            Description = "0: running [i]ppl values on one line; 1: one line per chunk: token offset, PPL (and, unstrided, mean and deviation of -log p).",
        };
        var command = new Command("perplexity", "Perplexity and KL divergence as llama-perplexity measures them.")
        {
            model, file, context, batch, chunks, threads, json, klBase, kl, stride, outputType,
        };
        var tasks = TaskOptions.AddTo(command);
        command.SetAction(p => CommandRunner.Run(() => Run(
            new Common(p.GetRequiredValue(model), p.GetValue(file), p.GetValue(context), p.GetValue(batch), p.GetValue(chunks), p.GetValue(threads), p.GetValue(json),
                p.GetValue(stride), p.GetValue(outputType)),
            p.GetValue(klBase), p.GetValue(kl), tasks, p)));
        return command;
    }

    private static int Run(Common common, FileInfo? klBase, bool kl, TaskOptions tasks, ParseResult parse)
    {
        if (common.Threads < 1) throw new InvalidInputException($"--threads must be at least 1, not {common.Threads}");
        if (common.Batch < 1) throw new InvalidInputException($"--batch-size must be at least 1, not {common.Batch}");
        if (common.Context < 3) throw new InvalidInputException($"--ctx-size must be at least 3, not {common.Context}");
        if (common.Chunks == 0 || common.Chunks < -1) throw new InvalidInputException($"--chunks must be -1 (all) or at least 1, not {common.Chunks}");
        if (common.Stride < 0) throw new InvalidInputException($"--ppl-stride must be 0 (off) or positive, not {common.Stride}");
        if (common.OutputType is not (0 or 1)) throw new InvalidInputException($"--ppl-output-type must be 0 or 1, not {common.OutputType}");
        if (!common.Model.Exists) throw new FileNotFoundException($"file not found: {common.Model.FullName}", common.Model.FullName);
        // Task modes first, as llama-perplexity orders them.
        if (tasks.TryRun(parse, common.Model, common.Text, common.Context, common.Threads, common.Json, out int exit)) return exit;
        if (kl)
        {
            if (klBase is null) throw new InvalidInputException("--kl-divergence needs the base file: --kl-divergence-base FILE");
            if (common.Stride > 0) throw new InvalidInputException("--ppl-stride applies to perplexity, not to --kl-divergence");
            return RunKlDivergence(common, klBase);
        }
        if (common.Stride > 0)
        {
            if (klBase is not null) throw new InvalidInputException("--ppl-stride cannot write a KL-divergence base file (llama-perplexity's strided run writes none)");
            // Fail on a bad layout before the model is loaded.
            Perplexity.StridedLayout(common.Context, common.Batch, common.Stride);
        }
        return RunPerplexity(common, klBase);
    }

    private static int RunPerplexity(Common common, FileInfo? baseOut)
    {
        if (common.Text is null) throw new InvalidInputException("give the text to evaluate with -f FILE");
        if (!common.Text.Exists) throw new FileNotFoundException($"file not found: {common.Text.FullName}", common.Text.FullName);
        using var model = TransformerModel.Load(common.Model.FullName);
        var tokenizer = Tokenizer.FromGguf(model.File);
        var tokens = Perplexity.Tokenize(tokenizer, Perplexity.ReadText(common.Text.FullName));
        var running = new StringBuilder();
        PerplexityResult result = null!;
        Func<IProgress<PerplexityProgress>, PerplexityResult> evaluate = progress =>
        {
            if (baseOut is null) return Perplexity.Run(model, tokenizer, tokens, common.Options, null, progress);
            PerplexityResult r = null!;
            AtomicFile(baseOut.FullName, stream => r = Perplexity.Run(model, tokenizer, tokens, common.Options, stream, progress));
            return r;
        };
        if (common.Stride > 0)
        {
            var (window, nBatch) = Perplexity.StridedLayout(common.Context, common.Batch, common.Stride);
            Console.Out.WriteLine($"perplexity: {tokens.Length} tokens; strided: windows of {window} tokens (n_ctx {common.Context} + stride/2, rounded up to 256) every {common.Stride}, n_batch={nBatch}, threads={common.Threads}");
        }
        else
            Console.Out.WriteLine($"perplexity: {tokens.Length} tokens; n_ctx={common.Context}, n_batch={common.Batch}, threads={common.Threads}" +
                (baseOut is null ? "" : $"; saving all logits to {baseOut.Name}"));
        if (CommandRunner.Interactive)
        {
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("perplexity", maxValue: 1);
                    result = evaluate(new Reporter<PerplexityProgress>(p =>
                    {
                        running.Append(RunningEntry(p, common));
                        task.Description = Invariant($"chunk {p.Chunk}/{p.ChunkCount}  PPL {p.Ppl:F4}");
                        task.Value = (double)p.Chunk / p.ChunkCount;
                    }));
                });
            Console.Out.Write(running.ToString());
            Console.Out.WriteLine();
        }
        else
        {
            var output = Console.Out;
            // llama-perplexity's time per pass and ETA after the first pass (one batch of n_seq chunks, or one window), on stderr.
            int sequences = common.Stride > 0 ? 1 : Perplexity.ChunkLayout(common.Context, common.Batch).Sequences;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            bool first = true;
            result = evaluate(new Reporter<PerplexityProgress>(p =>
            {
                if (first)
                {
                    first = false;
                    Console.Error.WriteLine(EtaLine(common.Stride > 0 ? "perplexity_v2" : "perplexity", clock.Elapsed.TotalSeconds, p.ChunkCount, sequences));
                }
                output.Write(RunningEntry(p, common));
                output.Flush();
            }));
            output.WriteLine();
        }
        if (result.Stride > 0)
            // llama-perplexity's strided run prints no final line; this one is Squeeze's.
            Console.Out.WriteLine(Invariant($"Strided estimate: PPL = {result.Ppl:F4} +/- {result.Uncertainty:F5} ({result.ChunkCount} windows of {result.ContextSize}, stride {result.Stride}, {result.ScoredTokens} tokens scored, {result.Seconds:F2} s)"));
        else
        {
            Console.Out.WriteLine(Invariant($"Final estimate: PPL = {result.Ppl:F4} +/- {result.Uncertainty:F5}"));
            Console.Out.WriteLine(Invariant($"{result.ChunkCount} chunks of {result.ContextSize} ({result.ScoredTokens} tokens scored), n_seq={result.Sequences}, {result.Seconds:F2} s"));
        }
        if (common.Json is not null)
            ResultFile.Write(common.Json.FullName, ResultFile.Kinds.Perplexity, ModelInfo.Of(model.File, common.Model.ToString()), common.Text.Name, result);
        return CommandRunner.Ok;
    }

    private static int RunKlDivergence(Common common, FileInfo basePath)
    {
        if (!basePath.Exists) throw new FileNotFoundException($"file not found: {basePath.FullName}", basePath.FullName);
        using var model = TransformerModel.Load(common.Model.FullName);
        var tokenizer = Tokenizer.FromGguf(model.File);
        using var reader = LogitsFileReader.Open(basePath.FullName);
        var h = reader.Header;
        var output = Console.Out;
        output.WriteLine($"kl_divergence: {h.ChunkCount} chunks, n_ctx={h.ContextSize}, n_vocab={h.VocabSize}, n_batch={common.Batch}, threads={common.Threads}");
        const string tableHeader = "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p";
        var lines = new List<string>();
        KlDivergenceResult result = null!;
        if (CommandRunner.Interactive)
        {
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("KL divergence", maxValue: 1);
                    result = KlDivergence.Run(model, tokenizer, reader, common.Options, new Reporter<KlProgress>(p =>
                    {
                        lines.Add(ChunkLine(p));
                        task.Description = Invariant($"chunk {p.Chunk}/{p.ChunkCount}  KLD {p.Running.Kld.Value:F5}");
                        task.Value = (double)p.Chunk / p.ChunkCount;
                    }));
                });
            output.WriteLine(tableHeader);
            foreach (var line in lines) output.WriteLine(line);
        }
        else
        {
            output.WriteLine(tableHeader);
            result = KlDivergence.Run(model, tokenizer, reader, common.Options, new Reporter<KlProgress>(p => { output.WriteLine(ChunkLine(p)); output.Flush(); }));
        }
        output.WriteLine();
        if (result.Enough) output.Write(FinalStatistics(result));
        else output.WriteLine($"{result.Tokens} tokens scored: too few for the final statistics (llama.cpp prints them from 100 tokens on)");
        if (common.Json is not null)
            ResultFile.Write(common.Json.FullName, ResultFile.Kinds.KlDivergence, ModelInfo.Of(model.File, common.Model.ToString()), basePath.Name, result);
        return CommandRunner.Ok;
    }

    /// <summary>
    /// One chunk's running output as llama-perplexity prints it: <c>[i]ppl,</c> (output type 0); with output type 1 one
    /// line per chunk, <c>%8d  %.4lf  %4lf  %4lf</c> (offset, PPL, mean and deviation of −log p), strided <c>%8d  %.4lf</c>.
    /// </summary>
    internal static string RunningEntry(PerplexityProgress p, Common common)
    {
        if (common.OutputType == 0) return Invariant($"[{p.Chunk}]{p.Ppl:F4},");
        return common.Stride > 0
            ? Invariant($"{p.Offset,8}  {p.Ppl:F4}\n")
            : Invariant($"{p.Offset,8}  {p.Ppl:F4}  {p.MeanNll,4:F6}  {p.NllDeviation,4:F6}\n");
    }

    /// <summary>llama-perplexity's <c>%s: %.2f seconds per pass - ETA [%d hours ]%.2f minutes</c> (whole seconds, as it counts them).</summary>
    internal static string EtaLine(string function, double secondsPerPass, int chunks, int sequences)
    {
        float t = (float)secondsPerPass;
        int total = (int)(t * chunks / sequences);
        string hours = total >= 3600 ? Invariant($"{total / 3600} hours ") : "";
        return Invariant($"{function}: {t:F2} seconds per pass - ETA {hours}{total % 3600 / 60.0:F2} minutes");
    }

    /// <summary>llama-perplexity's per-chunk KL line.</summary>
    internal static string ChunkLine(KlProgress p)
    {
        var r = p.Running;
        return Invariant($"{p.Chunk,4}    {r.Ppl.Value,9:F4} ± {r.Ppl.Uncertainty,9:F4}    {r.LnPplRatio.Value,10:F5} ± {r.LnPplRatio.Uncertainty,10:F5}") +
            Invariant($"    {r.Kld.Value,10:F5} ± {r.Kld.Uncertainty,10:F5}    {100 * r.RmsDeltaP.Value,6:F3} ± {100 * r.RmsDeltaP.Uncertainty,6:F3} %") +
            Invariant($"    {100 * r.SameTop.Value,6:F3} ± {100 * r.SameTop.Uncertainty,6:F3} %");
    }

    /// <summary>llama-perplexity's closing statistics, line for line.</summary>
    internal static string FinalStatistics(KlDivergenceResult r)
    {
        var s = new StringBuilder();
        void Line(string text) => s.Append(text).Append('\n');
        Line("====== Perplexity statistics ======");
        Line(Invariant($"Mean PPL(Q)                   : {r.PplQ.Value,10:F6} ± {r.PplQ.Uncertainty,10:F6}"));
        Line(Invariant($"Mean PPL(base)                : {r.PplBase.Value,10:F6} ± {r.PplBase.Uncertainty,10:F6}"));
        Line(Invariant($"Cor(ln(PPL(Q)), ln(PPL(base))): {100 * r.Correlation,6:F2}%"));
        Line(Invariant($"Mean ln(PPL(Q)/PPL(base))     : {r.LnPplRatio.Value,10:F6} ± {r.LnPplRatio.Uncertainty,10:F6}"));
        Line(Invariant($"Mean PPL(Q)/PPL(base)         : {r.PplRatio.Value,10:F6} ± {r.PplRatio.Uncertainty,10:F6}"));
        Line(Invariant($"Mean PPL(Q)-PPL(base)         : {r.PplDifference.Value,10:F6} ± {r.PplDifference.Uncertainty,10:F6}"));
        Line("");
        Line("====== KL divergence statistics ======");
        Line(Invariant($"Mean    KLD: {r.Kld.Value,10:F6} ± {r.Kld.Uncertainty,10:F6}"));
        foreach (var p in r.KldPercentiles)
            Line(Invariant($"{Label(p.Name),-8}KLD: {p.Value,10:F6}"));
        Line("");
        Line("====== Token probability statistics ======");
        Line(Invariant($"Mean    Δp: {100 * r.DeltaP.Value,6:F3} ± {100 * r.DeltaP.Uncertainty,5:F3} %"));
        foreach (var p in r.DeltaPPercentiles)
            Line(Invariant($"{Label(p.Name),-8}Δp: {100 * p.Value,6:F3}%"));
        Line("");
        Line(Invariant($"RMS Δp    : {100 * r.RmsDeltaP.Value,6:F3} ± {100 * r.RmsDeltaP.Uncertainty,5:F3} %"));
        Line(Invariant($"Same top p: {100 * r.SameTop.Value,6:F3} ± {100 * r.SameTop.Uncertainty,5:F3} %"));
        return s.ToString();
    }

    /// <summary>llama.cpp's labels: "99.9%", " 5.0%", "Median", "Maximum" padded to the value column.</summary>
    private static string Label(string name) => name.EndsWith('%') && name.Length == 4 ? " " + name : name;

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static void AtomicFile(string path, Action<Stream> write) => Squeeze.IO.AtomicFile.Write(path, write);
}

/// <summary>An <see cref="IProgress{T}"/> that calls back synchronously on the reporting thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class Reporter<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
