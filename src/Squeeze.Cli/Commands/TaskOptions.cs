using System.CommandLine;
using System.Text.Json;
using System.Text.Encodings.Web;
using Squeeze.Evaluation.Tasks;
using Squeeze.IO;
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
    private readonly Option<int> _parallel = new("--parallel", "-np") { Description = "Parallel sequences; task modes use at least 4, and the task context is -c times this.", DefaultValueFactory = _ => 4 };

    /// <summary>Adds the task options to <paramref name="command"/> (which provides -m, -f, -c, -t and --json).</summary>
    public static TaskOptions AddTo(Command command)
    {
        var o = new TaskOptions();
        foreach (var option in new Option[] { o._hellaSwag, o._hellaSwagTasks, o._winoGrande, o._winoGrandeTasks, o._multipleChoice, o._multipleChoiceTasks, o._binaryFile, o._parallel })
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
            int requested;
            if (hs)
            {
                requested = p.GetValue(_hellaSwagTasks);
                if (requested < 1) throw new InvalidInputException($"--hellaswag-tasks must be at least 1, not {requested}");
                var tasks = HellaSwagFile.Read(data.FullName);
                using var model = TransformerModel.Load(modelFile.FullName);
                var tokenizer = Tokenizer.FromGguf(model.File);
                Console.Out.WriteLine($"hellaswag_score : loaded {tasks.Count} tasks from prompt.");
                Console.Out.WriteLine($"hellaswag_score : selecting {Math.Min(requested, tasks.Count)} randomized tasks.");
                score = HellaSwag.Score(model, tokenizer, tasks, requested, options, Print, cancel.Token);
            }
            else if (wg)
            {
                requested = p.GetValue(_winoGrandeTasks);
                if (requested < 0) throw new InvalidInputException($"--winogrande-tasks must be 0 (all) or more, not {requested}");
                var tasks = WinoGrandeFile.Read(data.FullName);
                foreach (var note in tasks.Notes) Console.Error.WriteLine($"squeeze: note: {data.Name}: {note}");
                using var model = TransformerModel.Load(modelFile.FullName);
                var tokenizer = Tokenizer.FromGguf(model.File);
                Console.Out.WriteLine($"winogrande_score : loaded {tasks.Tasks.Count} tasks from prompt.");
                score = WinoGrande.Score(model, tokenizer, tasks, requested, options, Print, cancel.Token);
            }
            else
            {
                requested = p.GetValue(_multipleChoiceTasks);
                if (requested < 0) throw new InvalidInputException($"--multiple-choice-tasks must be 0 (all) or more, not {requested}");
                var tasks = MultipleChoiceFile.Read(data.FullName);
                using var model = TransformerModel.Load(modelFile.FullName);
                var tokenizer = Tokenizer.FromGguf(model.File);
                Console.Out.WriteLine($"multiple_choice_score: there are {tasks.Count} tasks in prompt");
                score = MultipleChoice.Score(model, tokenizer, tasks, requested, options, Print, cancel.Token);
            }
            if (json is not null) WriteJson(json.FullName, score, modelFile, data, options, requested);
            return true;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static void Print(string line)
    {
        Console.Out.WriteLine(line);
        Console.Out.Flush();
    }

    /// <summary>The results for <c>squeeze report</c>: the summary, then every task's outcome.</summary>
    internal static void WriteJson(string path, TaskScore s, FileInfo model, FileInfo data, TaskRunOptions options, int requested)
    {
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            w.WriteStartObject();
            w.WriteString("command", "perplexity");
            w.WriteString("mode", s.Task);
            w.WriteString("model", model.FullName);
            w.WriteString("file", data.FullName);
            w.WriteNumber("ctx_size", options.ContextSize);
            w.WriteNumber("parallel", Math.Max(4, options.Parallel));
            w.WriteNumber("tasks_requested", requested);
            w.WriteNumber("tasks_available", s.Available);
            w.WriteNumber("tasks", s.Tasks);
            w.WriteNumber("correct", s.Correct);
            Number(w, "accuracy", s.Accuracy);
            Number(w, "uncertainty", s.Uncertainty);
            if (s.IntervalLow is double lo) Number(w, "interval95_low", lo);
            if (s.IntervalHigh is double hi) Number(w, "interval95_high", hi);
            if (s.RandomChance is double rc) Number(w, "random_chance", rc);
            if (s.RandomChanceUncertainty is double rcu) Number(w, "random_chance_uncertainty", rcu);
            w.WriteStartArray("notes");
            foreach (var n in s.Notes) w.WriteStringValue(n);
            w.WriteEndArray();
            w.WriteStartArray("outcomes");
            foreach (var o in s.Outcomes)
            {
                w.WriteStartObject();
                w.WriteNumber("task", o.Source);
                w.WriteNumber("predicted", o.Predicted);
                w.WriteNumber("expected", o.Expected);
                w.WriteBoolean("correct", o.Correct);
                w.WriteStartArray("scores");
                foreach (var v in o.Scores) { if (double.IsFinite(v)) w.WriteNumberValue(v); else w.WriteNullValue(); }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    private static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }
}
