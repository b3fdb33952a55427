using System.Globalization;
using Squeeze.IO;

namespace Squeeze.Pipeline;

/// <summary>
/// Runs one <c>squeeze</c> command line for a step (the CLI runs it as a child process). <paramref name="stdoutPath"/>,
/// when set, receives the command's standard output (written atomically); otherwise it goes to the step's log.
/// Returns the command's exit code.
/// </summary>
public delegate int CommandExecutor(IReadOnlyList<string> arguments, string? stdoutPath, StepContext context);

/// <summary>
/// Turns a <see cref="PipelineSpec"/> into the steps a quantizer runs by hand, each one the same <c>squeeze</c>
/// command a person would type, so that the pipeline's numbers are the individual commands' numbers:
/// <list type="number">
/// <item><c>convert</c> (a Hugging Face source) to the base type;</item>
/// <item><c>perplexity</c> of the base model on the evaluation text, saving its logits (the KL-divergence base);</item>
/// <item><c>imatrix</c> over the calibration text, then <c>stats</c>: table, CSV and heatmap;</item>
/// <item>per candidate: <c>quantize</c>, then <c>perplexity --kl-divergence</c> against the base logits, the tasks, and
/// <c>bench</c> (the base model gets the tasks and bench too);</item>
/// <item><c>report</c> over every result, with the best candidate at each size marked.</item>
/// </list>
/// Output layout: <c>models/</c>, <c>imatrix/</c>, <c>results/</c> (JSON per command), <c>logs/</c>, <c>report/</c>.
/// </summary>
public static class PipelinePlan
{
    /// <summary>The steps of <paramref name="spec"/>, writing under <paramref name="outputFolder"/>.</summary>
    public static IReadOnlyList<PipelineStep> Build(PipelineSpec spec, string outputFolder, CommandExecutor execute)
    {
        string output = Path.GetFullPath(outputFolder);
        var steps = new List<PipelineStep>();
        string threads = spec.Threads > 0 ? spec.Threads.ToString(CultureInfo.InvariantCulture) : "";
        string[] Threads() => threads.Length > 0 ? ["-t", threads] : [];
        string Out(string relative) => Path.Combine(output, relative);
        static string N(int value) => value.ToString(CultureInfo.InvariantCulture);

        PipelineStep Command(string name, string title, Dictionary<string, string> inputs, string[] outputs, List<string> args,
            string? stdout = null, object? extra = null)
        {
            // The key holds the arguments with the output folder factored out, so a moved output folder keeps its cache.
            var settings = new { args = args.Select(a => a.Replace(output, "$OUT", StringComparison.Ordinal)).ToArray(), stdout, extra };
            return new PipelineStep(name, title, inputs, outputs, settings, context =>
            {
                int code = execute(args, stdout is null ? null : Out(stdout), context);
                if (code == 0) return;
                // The command's own last line usually says what went wrong; the log has everything.
                var log = context.PathOf(Path.Combine("logs", name + ".log"));
                var last = File.Exists(log) ? File.ReadLines(log).LastOrDefault(l => l.Trim().Length > 0)?.Trim() : null;
                throw new PipelineStepException($"step {name} failed: squeeze {args[0]} exited with code {code}" +
                    (last is null ? "" : $": {last}") + $" (see logs/{name}.log)");
            });
        }

        // 1. The base model.
        string source = spec.Resolve(spec.Source);
        string baseModel;
        string baseName = "base-" + spec.BaseType.ToUpperInvariant();
        if (spec.SourceIsCheckpoint)
        {
            baseModel = Out($"models/{baseName}.gguf");
            var args = new List<string> { "convert", source, "--outfile", baseModel, "--outtype", spec.BaseType.ToLowerInvariant() };
            if (spec.PreTokenizer is not null) args.AddRange(["--pre-tokenizer", spec.PreTokenizer]);
            steps.Add(Command("convert", "Convert the checkpoint to GGUF", new() { ["checkpoint"] = source },
                [$"models/{baseName}.gguf"], args));
        }
        else baseModel = source;

        // 2. Base perplexity, saving the logits every candidate is compared with.
        var eval = spec.Evaluation;
        string evalText = spec.Resolve(eval.Text!);
        string baseLogits = Out("results/base.logits");
        var chunkArgs = eval.Chunks > 0 ? new[] { "--chunks", N(eval.Chunks) } : [];
        steps.Add(Command("base-perplexity", "Perplexity of the base model (saving its logits)",
            new() { ["model"] = baseModel, ["text"] = evalText },
            ["results/base.logits", "results/base-perplexity.json"],
            ["perplexity", "-m", baseModel, "-f", evalText, "-c", N(eval.Context), .. chunkArgs,
             "--kl-divergence-base", baseLogits, "--json", Out("results/base-perplexity.json"), .. Threads()]));

        // 3. Importance matrix and its statistics.
        string? imatrix = null;
        if (spec.Calibration.Count > 0)
        {
            string calibration = Out("imatrix/calibration.txt");
            var calibrationFiles = spec.Calibration.Select(spec.Resolve).ToList();
            steps.Add(new PipelineStep("calibration", "Join the calibration texts",
                calibrationFiles.Select((f, i) => KeyValuePair.Create($"text{i}", f)).ToDictionary(), ["imatrix/calibration.txt"], null,
                _ => AtomicFile.Write(calibration, stream =>
                {
                    foreach (var f in calibrationFiles)
                        using (var input = File.OpenRead(f)) input.CopyTo(stream);
                })));
            imatrix = Out("imatrix/imatrix.gguf");
            var im = spec.Imatrix;
            var imArgs = new List<string> { "imatrix", "-m", baseModel, "-f", calibration, "-o", imatrix, "-c", N(im.Context) };
            if (im.Chunks > 0) imArgs.AddRange(["--chunks", N(im.Chunks)]);
            if (im.ProcessOutput) imArgs.Add("--process-output");
            imArgs.AddRange(Threads());
            steps.Add(Command("imatrix", "Collect the importance matrix", new() { ["model"] = baseModel, ["text"] = calibration },
                ["imatrix/imatrix.gguf"], imArgs));
            steps.Add(Command("statistics", "Importance statistics (table, CSV, heatmap)", new() { ["imatrix"] = imatrix },
                ["imatrix/statistics.txt", "imatrix/heatmap.png"],
                ["stats", imatrix, "--plot", Out("imatrix/heatmap.png"), "--plot-stat", im.Heatmap], stdout: "imatrix/statistics.txt"));
            steps.Add(Command("statistics-csv", "Importance statistics as CSV", new() { ["imatrix"] = imatrix },
                ["imatrix/statistics.csv"], ["stats", imatrix, "--csv"], stdout: "imatrix/statistics.csv"));
        }

        // 4. Candidates, and the evaluations every model gets.
        var results = new List<string> { "results/base-perplexity.json" };
        results.AddRange(Evaluations(baseName, baseModel, includeKld: false));
        foreach (var candidate in spec.Candidates)
        {
            string model = Out($"models/{candidate.Name}.gguf");
            var args = new List<string> { "quantize" };
            var inputs = new Dictionary<string, string> { ["model"] = baseModel };
            if (candidate.UsesImatrix)
            {
                args.AddRange(["--imatrix", imatrix!]);
                inputs["imatrix"] = imatrix!;
            }
            if (candidate.Pure) args.Add("--pure");
            foreach (var rule in candidate.Rules) args.AddRange(["--tensor-type", rule]);
            for (int i = 0; i < candidate.RuleFiles.Count; i++)
            {
                var file = spec.Resolve(candidate.RuleFiles[i]);
                args.AddRange(["--tensor-type-file", file]);
                inputs[$"rules{i}"] = file;
            }
            if (candidate.OutputTensorType is not null) args.AddRange(["--output-tensor-type", candidate.OutputTensorType]);
            if (candidate.TokenEmbeddingType is not null) args.AddRange(["--token-embedding-type", candidate.TokenEmbeddingType]);
            args.AddRange([baseModel, model, candidate.Type]);
            if (threads.Length > 0) args.Add(threads);
            steps.Add(Command($"quantize-{candidate.Name}", $"Quantize {candidate.Name}", inputs, [$"models/{candidate.Name}.gguf"], args));
            results.AddRange(Evaluations(candidate.Name, model, includeKld: true));
        }

        // 5. The report over every result; the base model is the size reference.
        var resultInputs = results.Select((r, i) => KeyValuePair.Create($"result{i}", Out(r))).ToDictionary();
        steps.Add(Command("report", "Report (Markdown, CSV, charts)", resultInputs,
            ["report/report.md", "report/report.csv", "report/report-kld.png", "report/report-ppl-ratio.png"],
            ["report", .. results.Select(Out), "-o", Out("report/report"), "--reference", baseModel]));
        return steps;

        // The measuring steps of one model; returns their result files.
        IEnumerable<string> Evaluations(string name, string model, bool includeKld)
        {
            var list = new List<string>();
            if (includeKld)
            {
                string result = $"results/{name}-kl-divergence.json";
                steps.Add(Command($"kl-divergence-{name}", $"Perplexity and KL divergence of {name}",
                    new() { ["model"] = model, ["base"] = baseLogits }, [result],
                    ["perplexity", "-m", model, "--kl-divergence-base", baseLogits, "--kl-divergence", "--json", Out(result), .. chunkArgs, .. Threads()]));
                list.Add(result);
            }
            void Task(string task, string file, string[] flags)
            {
                string result = $"results/{name}-{task}.json";
                steps.Add(Command($"{task}-{name}", $"{task} of {name}", new() { ["model"] = model, ["tasks"] = file }, [result],
                    ["perplexity", "-m", model, "-f", file, .. flags, "--json", Out(result), .. Threads()]));
                list.Add(result);
            }
            if (eval.Hellaswag is not null)
                Task("hellaswag", spec.Resolve(eval.Hellaswag), ["--hellaswag", "--hellaswag-tasks", N(eval.HellaswagTasks)]);
            if (eval.Winogrande is not null)
                Task("winogrande", spec.Resolve(eval.Winogrande), ["--winogrande", "--winogrande-tasks", N(eval.WinograndeTasks)]);
            foreach (var set in eval.MultipleChoice)
                Task(set.Name, spec.Resolve(set.File), ["--multiple-choice", "--multiple-choice-tasks", N(set.Tasks)]);
            if (eval.Bench is { } bench)
            {
                string result = $"results/{name}-bench.json";
                // Speed is measured, not derived: its step is cached like the others so a rerun keeps the first figures.
                steps.Add(Command($"bench-{name}", $"Speed of {name}", new() { ["model"] = model }, [result],
                    ["bench", "-m", model, "-p", N(bench.Prompt), "-n", N(bench.Generate), "-r", N(bench.Repetitions), "-o", "md",
                     "--json", Out(result), .. Threads()]));
                list.Add(result);
            }
            return list;
        }
    }
}

/// <summary>A pipeline step's command failed; its log has the details.</summary>
public sealed class PipelineStepException(string message) : InvalidInputException(message);
