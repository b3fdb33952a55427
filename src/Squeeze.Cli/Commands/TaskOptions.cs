using System.CommandLine;
using Squeeze.Evaluation;
using Squeeze.Evaluation.Tasks;
using Squeeze.Models;
using Squeeze.Tokenizers;

namespace Squeeze.Cli.Commands;

/// <summary>
/// llama-perplexity's task modes as options of <c>squeeze perplexity</c>: <c>--hellaswag [--hellaswag-tasks N]</c>,
/// <c>--winogrande [--winogrande-tasks N]</c>, <c>--multiple-choice [--multiple-choice-tasks N]</c> with the data in
/// <c>-f FILE</c> (or <c>-bf FILE</c> for the multiple-choice binary). Wiring into the perplexity command:
/// <code>
/// var tasks = TaskOptions.AddTo(command);                                    // in Create()
/// if (tasks.TryRun(parseResult, model, text, ctx, threads, json, out int exit)) return exit;   // first thing in Run()
/// </code>
/// <c>--json FILE</c> saves a <see cref="ResultFile"/> of kind hellaswag, winogrande or multiple-choice.
/// </summary>
internal sealed class TaskOptions
{
    private readonly Option<bool> _hellaSwag = new("--hellaswag") { Description = "Score HellaSwag tasks from -f (llama.cpp's 6-line file) by acc_norm." };
    private readonly Option<int> _hellaSwagTasks = new("--hellaswag-tasks") { Description = "HellaSwag tasks to draw at random (llama.cpp's sampling).", DefaultValueFactory = _ => HellaSwag.DefaultTasks };
    private readonly Option<bool> _winoGrande = new("--winogrande") { Description = "Score WinoGrande tasks from -f (llama.cpp's CSV)." };
    private readonly Option<int> _winoGrandeTasks = new("--winogrande-tasks") { Description = "WinoGrande tasks to draw at random (0 = all, in file order)." };
    private readonly Option<bool> _multipleChoice = new("--multiple-choice") { Description = "Score multiple-choice tasks (ARC, MMLU, TruthfulQA, ...) from llama.cpp's binary file (-bf or -f)." };
    private readonly Option<int> _multipleChoiceTasks = new("--multiple-choice-tasks") { Description = "Multiple-choice tasks to draw at random (0 = all, in file order)." };
    private readonly Option<FileInfo?> _binaryFile = new("--binary-file", "-bf") { Description = "The multiple-choice binary file (llama.cpp's -bf)." };
    private readonly Option<string?> _taskName = new("--task-name") { Description = "Multiple choice: the set's name in saved results and reports (default: the file name without extensions)." };
    private readonly Option<int> _parallel = new("--parallel", "-np") { Description = "Parallel sequences; task modes use at least 4, and the task context is -c times this.", DefaultValueFactory = _ => 4 };

    /// <summary>Adds the task options to <paramref name="command"/> (which provides -m, -f, -c, -t and --json).</summary>
    public static TaskOptions AddTo(Command command)
    {
        var o = new TaskOptions();
        foreach (var option in new Option[] { o._hellaSwag, o._hellaSwagTasks, o._winoGrande, o._winoGrandeTasks, o._multipleChoice, o._multipleChoiceTasks, o._binaryFile, o._taskName, o._parallel })
            command.Options.Add(option);
        return o;
    }

    /// <summary>Runs the task mode selected on the command line, if any; false when none is (the caller runs perplexity).</summary>
    public bool TryRun(ParseResult p, FileInfo modelFile, FileInfo? text, int context, int threads, FileInfo? json, out int exitCode)
    {
        bool hs = p.GetValue(_hellaSwag), wg = p.GetValue(_winoGrande), mc = p.GetValue(_multipleChoice);
        exitCode = CommandRunner.Ok;
        if (!hs && !wg && !mc) return false;
        if ((hs ? 1 : 0) + (wg ? 1 : 0) + (mc ? 1 : 0) > 1) throw new InvalidInputException("choose one of --hellaswag, --winogrande and --multiple-choice");
        if (threads < 1) throw new InvalidInputException($"--threads must be at least 1, not {threads}");
        if (context < 1) throw new InvalidInputException($"--ctx-size must be at least 1, not {context}");
        int parallel = p.GetValue(_parallel);
        if (parallel < 1) throw new InvalidInputException($"--parallel must be at least 1, not {parallel}");
        var data = mc ? p.GetValue(_binaryFile) ?? text : text;
        if (data is null) throw new InvalidInputException(mc ? "give the multiple-choice file with -bf FILE" : "give the task file with -f FILE");
        if (!data.Exists) throw new FileNotFoundException($"file not found: {data.FullName}", data.FullName);
        if (!modelFile.Exists) throw new FileNotFoundException($"file not found: {modelFile.FullName}", modelFile.FullName);

        var options = new TaskRunOptions { ContextSize = context, Parallel = parallel, Threads = threads };
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            TaskScore score;
            string column;
            int requested;
            if (hs)
            {
                requested = p.GetValue(_hellaSwagTasks);
                if (requested < 1) throw new InvalidInputException($"--hellaswag-tasks must be at least 1, not {requested}");
            }
            else
            {
                requested = p.GetValue(wg ? _winoGrandeTasks : _multipleChoiceTasks);
                if (requested < 0) throw new InvalidInputException($"{(wg ? "--winogrande-tasks" : "--multiple-choice-tasks")} must be 0 (all) or more, not {requested}");
            }
            // The data is checked before the model is loaded: a bad file fails fast.
            IReadOnlyList<HellaSwagTask>? hellaSwag = hs ? HellaSwagFile.Read(data.FullName) : null;
            WinoGrandeData? winoGrande = wg ? WinoGrandeFile.Read(data.FullName) : null;
            IReadOnlyList<MultipleChoiceTask>? multipleChoice = mc ? MultipleChoiceFile.Read(data.FullName) : null;
            using var model = TransformerModel.Load(modelFile.FullName);
            var tokenizer = Tokenizer.FromGguf(model.File);
            if (hellaSwag is not null)
            {
                Console.Out.WriteLine($"hellaswag_score : loaded {hellaSwag.Count} tasks from prompt.");
                Console.Out.WriteLine($"hellaswag_score : selecting {Math.Min(requested, hellaSwag.Count)} randomized tasks.");
                score = HellaSwag.Score(model, tokenizer, hellaSwag, requested, options, Print, cancel.Token);
                column = "HellaSwag";
            }
            else if (winoGrande is not null)
            {
                foreach (var note in winoGrande.Notes) Console.Error.WriteLine($"squeeze: note: {data.Name}: {note}");
                Console.Out.WriteLine($"winogrande_score : loaded {winoGrande.Tasks.Count} tasks from prompt.");
                score = WinoGrande.Score(model, tokenizer, winoGrande, requested, options, Print, cancel.Token);
                column = "WinoGrande";
            }
            else
            {
                Console.Out.WriteLine($"multiple_choice_score: there are {multipleChoice!.Count} tasks in prompt");
                score = MultipleChoice.Score(model, tokenizer, multipleChoice, requested, options, Print, cancel.Token);
                column = p.GetValue(_taskName) ?? SetName(data.Name);
            }
            if (json is not null)
                ResultFile.Write(json.FullName, score.Task, ModelInfo.Of(model.File, modelFile.ToString()), data.Name, Result(score, column, requested, options));
            return true;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>A multiple-choice set's report column from its file name: "arc-challenge-validation.bin" -> "arc-challenge-validation".</summary>
    internal static string SetName(string fileName)
    {
        var name = fileName;
        while (Path.GetExtension(name) is { Length: > 0 } ext && ext.Length <= 4) name = name[..^ext.Length];
        return name.Length > 0 ? name : fileName;
    }

    /// <summary>The saved result: <c>task</c> (the report's column), <c>tasks</c>, <c>accuracy</c> and <c>uncertainty</c> in
    /// percent as <c>squeeze report</c> reads them, then the run's details and every task's outcome.</summary>
    internal sealed record TaskResult(string Task, int Tasks, double Accuracy, double Uncertainty, string Mode, int Correct, int TasksAvailable,
        int TasksRequested, int CtxSize, int Parallel, double? Interval95Low, double? Interval95High, double? RandomChance, double? RandomChanceUncertainty,
        IReadOnlyList<string> Notes, IReadOnlyList<TaskOutcome> Outcomes);

    internal static TaskResult Result(TaskScore s, string column, int requested, TaskRunOptions options) =>
        new(column, s.Tasks, s.Accuracy, s.Uncertainty, s.Task, s.Correct, s.Available, requested, options.ContextSize, Math.Max(4, options.Parallel),
            s.IntervalLow, s.IntervalHigh, s.RandomChance, s.RandomChanceUncertainty, s.Notes, s.Outcomes);

    private static void Print(string line)
    {
        Console.Out.WriteLine(line);
        Console.Out.Flush();
    }
}
