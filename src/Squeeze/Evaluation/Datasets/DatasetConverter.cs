using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Squeeze.Evaluation.Tasks;

namespace Squeeze.Evaluation.Datasets;

/// <summary>The evaluation sets <see cref="DatasetConverter"/> reads.</summary>
public enum DatasetKind
{
    /// <summary>llama.cpp's 6-line HellaSwag text (optionally gzip).</summary>
    HellaSwagText,
    /// <summary>HellaSwag's original JSONL (activity_label, ctx, endings, label).</summary>
    HellaSwagJsonl,
    /// <summary>WinoGrande's JSONL (sentence, option1, option2, answer) with an optional labels file.</summary>
    WinoGrandeJsonl,
    /// <summary>llama.cpp's WinoGrande CSV.</summary>
    WinoGrandeCsv,
    /// <summary>ARC JSONL, AI2's (question.stem, question.choices) or Hugging Face's (question, choices.text/label), with answerKey.</summary>
    ArcJsonl,
    /// <summary>MMLU CSV: the original (no header: question, A-D, letter) or with a header question,choice0..3,answer (index 0-3); a folder of them.</summary>
    MmluCsv,
    /// <summary>TruthfulQA's mc_task.json (question, mc1_targets, mc2_targets).</summary>
    TruthfulQaJson,
    /// <summary>TruthfulQA.csv (Question, Best Answer, Correct Answers, Incorrect Answers; answers separated by "; ").</summary>
    TruthfulQaCsv,
    /// <summary>llama.cpp's multiple-choice binary.</summary>
    MultipleChoiceBinary,
}

/// <summary>llama-perplexity's three task file formats.</summary>
public enum TaskFormat
{
    HellaSwag,
    WinoGrande,
    MultipleChoice,
}

/// <summary>A dataset read into tasks of one of llama.cpp's formats.</summary>
public sealed record Dataset(DatasetKind Kind, TaskFormat Format, IReadOnlyList<HellaSwagTask>? HellaSwag, IReadOnlyList<WinoGrandeTask>? WinoGrande,
    IReadOnlyList<MultipleChoiceTask>? MultipleChoice)
{
    public int Count => HellaSwag?.Count ?? WinoGrande?.Count ?? MultipleChoice!.Count;
}

/// <summary>
/// Turns evaluation sets into llama-perplexity's task files: HellaSwag (6-line text, or multiple choice), WinoGrande (CSV),
/// ARC, MMLU and TruthfulQA (multiple-choice binary). Questions and answers are taken as the sets give them; HellaSwag
/// JSONL is preprocessed as llama.cpp's file (klosax/hellaswag_text_data) was: "activity_label: ctx", " [title]" to ". ",
/// other [tags] removed, double spaces collapsed, trimmed (before and after).
/// </summary>
public static partial class DatasetConverter
{
    /// <summary>Recognises a set by its name and first bytes.</summary>
    public static DatasetKind Detect(string path)
    {
        if (Directory.Exists(path)) return DatasetKind.MmluCsv;
        var name = Path.GetFileName(path).ToLowerInvariant();
        if (name.EndsWith(".gz")) name = name[..^3];
        var ext = Path.GetExtension(name);
        if (ext == ".bin") return DatasetKind.MultipleChoiceBinary;
        if (ext == ".txt") return DatasetKind.HellaSwagText;
        var text = TaskText.ReadText(path);
        var head = text.TrimStart();
        if (ext == ".json" || head.StartsWith('[')) return DatasetKind.TruthfulQaJson;
        if (ext == ".jsonl" || head.StartsWith('{'))
        {
            var first = head[..Math.Max(0, head.IndexOf('\n') is int nl and >= 0 ? nl : head.Length)];
            if (first.Contains("\"endings\"")) return DatasetKind.HellaSwagJsonl;
            if (first.Contains("\"option1\"")) return DatasetKind.WinoGrandeJsonl;
            if (first.Contains("\"answerKey\"")) return DatasetKind.ArcJsonl;
            throw new TaskFileException(path, "line 1", "not a known JSONL set: expected HellaSwag (endings), WinoGrande (option1) or ARC (answerKey) records");
        }
        if (ext == ".csv")
        {
            var firstLine = head.Split('\n', 2)[0];
            if (firstLine.Contains("Best Answer")) return DatasetKind.TruthfulQaCsv;
            if (firstLine.StartsWith("question,choice0", StringComparison.OrdinalIgnoreCase)) return DatasetKind.MmluCsv;
            var fields = Csv.Parse(firstLine, path);
            if (fields.Count > 0 && fields[0].Fields.Count == 6) return DatasetKind.MmluCsv;
            return DatasetKind.WinoGrandeCsv;
        }
        throw new TaskFileException(path, "file name", "cannot tell which set this is: expected .txt(.gz), .jsonl, .json, .csv, .bin or a folder of MMLU CSV files");
    }

    /// <summary>Reads a set (<paramref name="labels"/>: WinoGrande's separate labels file, one 1 or 2 per line).</summary>
    public static Dataset Load(string path, DatasetKind? kind = null, string? labels = null)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);
        var k = kind ?? Detect(path);
        if (labels is not null && k != DatasetKind.WinoGrandeJsonl) throw new InvalidInputException("a labels file goes only with WinoGrande JSONL");
        return k switch
        {
            DatasetKind.HellaSwagText => new(k, TaskFormat.HellaSwag, HellaSwagFile.Read(path), null, null),
            DatasetKind.HellaSwagJsonl => new(k, TaskFormat.HellaSwag, HellaSwagJsonl(path), null, null),
            DatasetKind.WinoGrandeCsv => new(k, TaskFormat.WinoGrande, null, WinoGrandeFile.Read(path).Tasks, null),
            DatasetKind.WinoGrandeJsonl => new(k, TaskFormat.WinoGrande, null, WinoGrandeJsonl(path, labels), null),
            DatasetKind.ArcJsonl => new(k, TaskFormat.MultipleChoice, null, null, Arc(path)),
            DatasetKind.MmluCsv => new(k, TaskFormat.MultipleChoice, null, null, Mmlu(path)),
            DatasetKind.TruthfulQaJson => new(k, TaskFormat.MultipleChoice, null, null, TruthfulQaJson(path)),
            DatasetKind.TruthfulQaCsv => new(k, TaskFormat.MultipleChoice, null, null, TruthfulQaCsv(path)),
            DatasetKind.MultipleChoiceBinary => new(k, TaskFormat.MultipleChoice, null, null, MultipleChoiceFile.Read(path)),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }

    /// <summary>Writes <paramref name="data"/> as <paramref name="format"/> (its own format when null). HellaSwag can also be
    /// written as multiple choice (context as the question, endings as answers), as ikawrakow's hellaswag .bin is.</summary>
    public static TaskFormat Write(Dataset data, string output, TaskFormat? format = null)
    {
        var f = format ?? data.Format;
        switch (f)
        {
            case TaskFormat.HellaSwag when data.HellaSwag is not null: HellaSwagFile.Write(output, data.HellaSwag); break;
            case TaskFormat.WinoGrande when data.WinoGrande is not null: WinoGrandeFile.Write(output, data.WinoGrande); break;
            case TaskFormat.MultipleChoice when data.MultipleChoice is not null: MultipleChoiceFile.Write(output, data.MultipleChoice); break;
            case TaskFormat.MultipleChoice when data.HellaSwag is not null:
                MultipleChoiceFile.Write(output, data.HellaSwag.Select(t => new MultipleChoiceTask(t.Context,
                    new MultipleChoiceAnswers(t.Endings, Enumerable.Range(0, t.Endings.Count).Select(i => i == t.Gold ? 1 : 0).ToArray()),
                    MultipleChoiceAnswers.Empty)).ToList());
                break;
            default: throw new InvalidInputException($"{data.Kind} cannot be written as {f}");
        }
        return f;
    }

    [GeneratedRegex(@"\[.*?\]")]
    private static partial Regex Bracketed();

    /// <summary>lm-evaluation-harness's HellaSwag preprocess, which llama.cpp's HellaSwag file went through, then a trim.</summary>
    public static string Preprocess(string text)
    {
        text = text.Trim();
        text = text.Replace(" [title]", ". ");
        text = Bracketed().Replace(text, "");
        // Trimmed again: llama.cpp's file has no line that starts or ends with a space, though tags such as a leading
        // "[substeps]" would leave one.
        return text.Replace("  ", " ").Trim();
    }

    private static IEnumerable<(int Line, JsonElement Record)> JsonLines(string path)
    {
        var lines = TaskText.Lines(TaskText.ReadText(path));
        for (int i = 0; i < lines.Count; i++)
        {
            if (lines[i].Trim().Length == 0) continue;
            JsonElement e;
            try { e = JsonDocument.Parse(lines[i]).RootElement; }
            catch (JsonException ex) { throw new TaskFileException(path, $"line {i + 1}", $"not valid JSON ({ex.Message})"); }
            if (e.ValueKind != JsonValueKind.Object) throw new TaskFileException(path, $"line {i + 1}", "expected a JSON object");
            yield return (i + 1, e);
        }
    }

    private static string Str(JsonElement e, string name, string path, int line)
    {
        if (e.TryGetProperty(name, out var v))
        {
            if (v.ValueKind == JsonValueKind.String) return v.GetString()!;
            if (v.ValueKind == JsonValueKind.Number) return v.GetRawText();
        }
        throw new TaskFileException(path, $"line {line}", $"the field \"{name}\" (a string) is missing");
    }

    private static JsonElement Arr(JsonElement e, string name, string path, int line) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array ? v : throw new TaskFileException(path, $"line {line}", $"the field \"{name}\" (an array) is missing");

    private static IReadOnlyList<HellaSwagTask> HellaSwagJsonl(string path)
    {
        var tasks = new List<HellaSwagTask>();
        foreach (var (line, e) in JsonLines(path))
        {
            var ctx = e.TryGetProperty("ctx", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : Str(e, "ctx_a", path, line) + " " + Str(e, "ctx_b", path, line);
            var endings = Arr(e, "endings", path, line).EnumerateArray().Select(x => x.GetString() ?? "").ToArray();
            if (endings.Length != HellaSwagFile.EndingCount) throw new TaskFileException(path, $"line {line}", $"expected {HellaSwagFile.EndingCount} endings, found {endings.Length}");
            var labelText = Str(e, "label", path, line);
            if (!int.TryParse(labelText, NumberStyles.None, CultureInfo.InvariantCulture, out int label) || label >= HellaSwagFile.EndingCount)
                throw new TaskFileException(path, $"line {line}", $"the label is '{labelText}', not 0-3");
            tasks.Add(new HellaSwagTask(Preprocess(Str(e, "activity_label", path, line) + ": " + ctx), label, endings.Select(Preprocess).ToArray()));
        }
        if (tasks.Count == 0) throw new TaskFileException(path, "line 1", "no tasks");
        return tasks;
    }

    private static IReadOnlyList<WinoGrandeTask> WinoGrandeJsonl(string path, string? labelsPath)
    {
        var records = JsonLines(path).ToList();
        List<string>? labels = null;
        if (labelsPath is not null)
        {
            labels = TaskText.Lines(TaskText.ReadText(labelsPath)).Where(l => l.Trim().Length > 0).Select(l => l.Trim()).ToList();
            if (labels.Count != records.Count) throw new TaskFileException(labelsPath, $"line {labels.Count}", $"{labels.Count} labels for {records.Count} tasks in {path}");
        }
        var tasks = new List<WinoGrandeTask>();
        for (int i = 0; i < records.Count; i++)
        {
            var (line, e) = records[i];
            var answer = labels?[i] ?? Str(e, "answer", path, line);
            if (answer is not ("1" or "2")) throw new TaskFileException(labelsPath ?? path, $"line {(labels is null ? line : i + 1)}", $"the answer is '{answer}', not 1 or 2");
            var sentence = Str(e, "sentence", path, line);
            int blank = sentence.IndexOf('_');
            if (blank < 0) throw new TaskFileException(path, $"line {line}", "the sentence has no blank '_'");
            tasks.Add(new WinoGrandeTask(i.ToString(CultureInfo.InvariantCulture), sentence[..blank], sentence[(blank + 1)..],
                Str(e, "option1", path, line), Str(e, "option2", path, line), answer[0] - '0'));
        }
        if (tasks.Count == 0) throw new TaskFileException(path, "line 1", "no tasks");
        return tasks;
    }

    private static IReadOnlyList<MultipleChoiceTask> Arc(string path)
    {
        var tasks = new List<MultipleChoiceTask>();
        foreach (var (line, e) in JsonLines(path))
        {
            string question;
            JsonElement choices;
            var q = e.GetProperty("question");
            if (q.ValueKind == JsonValueKind.Object) { question = Str(q, "stem", path, line); choices = Arr(q, "choices", path, line); }
            else { question = Str(e, "question", path, line); choices = e.GetProperty("choices"); }
            var texts = new List<string>();
            var keys = new List<string>();
            if (choices.ValueKind == JsonValueKind.Array)
                foreach (var c in choices.EnumerateArray()) { texts.Add(Str(c, "text", path, line)); keys.Add(Str(c, "label", path, line)); }
            else
            {
                texts.AddRange(Arr(choices, "text", path, line).EnumerateArray().Select(x => x.GetString() ?? ""));
                keys.AddRange(Arr(choices, "label", path, line).EnumerateArray().Select(x => x.GetString() ?? ""));
            }
            var key = Str(e, "answerKey", path, line);
            var labels = keys.Select(k => k == key ? 1 : 0).ToArray();
            if (!labels.Contains(1)) throw new TaskFileException(path, $"line {line}", $"the answer key '{key}' names none of the choices ({string.Join(", ", keys)})");
            tasks.Add(new MultipleChoiceTask(question, new MultipleChoiceAnswers(texts, labels), MultipleChoiceAnswers.Empty));
        }
        if (tasks.Count == 0) throw new TaskFileException(path, "line 1", "no tasks");
        return tasks;
    }

    private static IReadOnlyList<MultipleChoiceTask> Mmlu(string path)
    {
        var files = Directory.Exists(path)
            ? Directory.EnumerateFiles(path, "*.csv", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList()
            : [path];
        if (files.Count == 0) throw new TaskFileException(path, "folder", "holds no .csv files");
        var tasks = new List<MultipleChoiceTask>();
        foreach (var file in files)
        {
            var records = Csv.Parse(TaskText.ReadText(file), file);
            bool header = records.Count > 0 && records[0].Fields.Count > 0 && records[0].Fields[0].Equals("question", StringComparison.OrdinalIgnoreCase);
            foreach (var (line, f) in records.Skip(header ? 1 : 0))
            {
                if (f.Count != 6) throw new TaskFileException(file, $"line {line}", $"expected 6 fields (question, 4 choices, answer), found {f.Count}");
                var a = f[5].Trim();
                int answer = a.Length == 1 && a[0] is >= 'A' and <= 'D' ? a[0] - 'A' : a.Length == 1 && a[0] is >= '0' and <= '3' ? a[0] - '0' : -1;
                if (answer < 0) throw new TaskFileException(file, $"line {line}", $"the answer is '{a}', not A-D or 0-3");
                tasks.Add(new MultipleChoiceTask(f[0], new MultipleChoiceAnswers(f.GetRange(1, 4), Enumerable.Range(0, 4).Select(i => i == answer ? 1 : 0).ToArray()), MultipleChoiceAnswers.Empty));
            }
        }
        if (tasks.Count == 0) throw new TaskFileException(path, "line 1", "no tasks");
        return tasks;
    }

    private static IReadOnlyList<MultipleChoiceTask> TruthfulQaJson(string path)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(TaskText.ReadText(path)).RootElement; }
        catch (JsonException e) { throw new TaskFileException(path, $"line {e.LineNumber + 1}", $"not valid JSON ({e.Message})"); }
        if (root.ValueKind != JsonValueKind.Array) throw new TaskFileException(path, "line 1", "expected a JSON array of questions");
        var tasks = new List<MultipleChoiceTask>();
        int n = 0;
        foreach (var e in root.EnumerateArray())
        {
            n++;
            var question = e.TryGetProperty("question", out var q) && q.ValueKind == JsonValueKind.String ? q.GetString()! : throw new TaskFileException(path, $"question {n}", "has no \"question\" string");
            tasks.Add(new MultipleChoiceTask(question, Targets(e, "mc1_targets", path, n), e.TryGetProperty("mc2_targets", out _) ? Targets(e, "mc2_targets", path, n) : MultipleChoiceAnswers.Empty));
        }
        if (tasks.Count == 0) throw new TaskFileException(path, "line 1", "no questions");
        return tasks;
    }

    private static MultipleChoiceAnswers Targets(JsonElement e, string name, string path, int n)
    {
        if (!e.TryGetProperty(name, out var t) || t.ValueKind != JsonValueKind.Object) throw new TaskFileException(path, $"question {n}", $"has no \"{name}\" object");
        var answers = new List<string>();
        var labels = new List<int>();
        foreach (var p in t.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int label) || label is not (0 or 1))
                throw new TaskFileException(path, $"question {n}", $"{name}: the label of '{p.Name}' is not 0 or 1");
            answers.Add(p.Name);
            labels.Add(label);
        }
        return new MultipleChoiceAnswers(answers, labels);
    }

    private static IReadOnlyList<MultipleChoiceTask> TruthfulQaCsv(string path)
    {
        var records = Csv.Parse(TaskText.ReadText(path), path);
        if (records.Count == 0) throw new TaskFileException(path, "line 1", "no questions");
        var header = records[0].Fields;
        int Column(string name) => header.IndexOf(name) is int i and >= 0 ? i : throw new TaskFileException(path, "line 1", $"no \"{name}\" column");
        int question = Column("Question"), best = Column("Best Answer"), correct = Column("Correct Answers"), incorrect = Column("Incorrect Answers");
        var tasks = new List<MultipleChoiceTask>();
        foreach (var (line, f) in records.Skip(1))
        {
            if (f.Count != header.Count) throw new TaskFileException(path, $"line {line}", $"expected {header.Count} fields, found {f.Count}");
            var wrong = Split(f[incorrect]);
            var right = Split(f[correct]);
            var mc1 = new MultipleChoiceAnswers([f[best].Trim(), .. wrong], [1, .. wrong.Select(_ => 0)]);
            var mc2 = new MultipleChoiceAnswers([.. right, .. wrong], [.. right.Select(_ => 1), .. wrong.Select(_ => 0)]);
            tasks.Add(new MultipleChoiceTask(f[question], mc1, mc2));
        }
        return tasks;
    }

    private static List<string> Split(string answers) => answers.Split("; ").Select(a => a.Trim()).Where(a => a.Length > 0).ToList();
}
