using System.Globalization;
using System.Text;
using Squeeze.IO;

namespace Squeeze.Evaluation.Tasks;

/// <summary>
/// One WinoGrande task: the sentence split at its blank (<see cref="First"/> + choice + <see cref="Second"/>), the two
/// choices and the right one (1 or 2). <see cref="Line"/> is the task's line in its file (0 when built in memory).
/// </summary>
public sealed record WinoGrandeTask(string Index, string First, string Second, string Choice1, string Choice2, int Answer, int Line = 0)
{
    /// <summary>The sentence with its blank.</summary>
    public string Sentence => First + "_" + Second;
}

/// <summary>A WinoGrande CSV as llama-perplexity reads it, with notes on lines it would leave out.</summary>
public sealed record WinoGrandeData(IReadOnlyList<WinoGrandeTask> Tasks, IReadOnlyList<string> Notes);

/// <summary>
/// llama.cpp's WinoGrande CSV (<c>load_winogrande_from_csv</c>; e.g. ikawrakow/winogrande-eval-for-llama.cpp):
/// <c>index,sentence,choice1,choice2,answer</c> per line, the sentence in double quotes when it holds a comma, its
/// blank written <c>_</c>, the answer 1 or 2. No field is unescaped: quotes only hide commas.
/// </summary>
public static class WinoGrandeFile
{
    public static WinoGrandeData Read(string path) => Parse(TaskText.ReadText(path), path);

    /// <summary>
    /// Parses as llama-perplexity does after <c>-f</c> (which drops the file's final newline): its reader stops at
    /// end-of-file before using a line that no newline ends, so the last task line of a file that ends with a single
    /// newline is not scored. Squeeze leaves it out too, so that scores and task sampling match llama.cpp's, and says so
    /// in <see cref="WinoGrandeData.Notes"/>; <see cref="Write"/> ends files with an empty line so that every task is read.
    /// A first line that is a header (its answer field not a number) and empty lines are skipped; any other line llama.cpp
    /// would skip with a complaint is an error here.
    /// </summary>
    public static WinoGrandeData Parse(string text, string source = "WinoGrande data")
    {
        var prompt = TaskText.AsPrompt(text);
        var tasks = new List<WinoGrandeTask>();
        var notes = new List<string>();
        int start = 0, lineNo = 0;
        while (start < prompt.Length)
        {
            int nl = prompt.IndexOf('\n', start);
            lineNo++;
            if (nl < 0)
            {
                notes.Add($"line {lineNo} is not read: llama.cpp's WinoGrande reader ignores a last line that is not followed by an empty line (end the file with a blank line to score it)");
                break;
            }
            var line = prompt[start..nl];
            start = nl + 1;
            if (line.EndsWith('\r')) line = line[..^1];
            if (line.Length == 0) continue;
            var task = ParseLine(line, lineNo, source, out bool header);
            if (header) continue;
            tasks.Add(task!);
        }
        if (tasks.Count == 0) throw new TaskFileException(source, "line 1", "no tasks" + (notes.Count > 0 ? $" ({notes[0]})" : ""));
        return new WinoGrandeData(tasks, notes);
    }

    private static WinoGrandeTask? ParseLine(string line, int lineNo, string source, out bool header)
    {
        header = false;
        string where = $"line {lineNo}";
        Span<int> comma = stackalloc int[4];
        int found = 0;
        bool quoted = false;
        for (int i = 0; i < line.Length && found < 4; i++)
        {
            char c = line[i];
            if (quoted) { if (c == '"') quoted = false; }
            else if (c == ',') comma[found++] = i;
            else if (c == '"') quoted = true;
        }
        if (found < 4)
            throw new TaskFileException(source, where, $"expected 5 comma-separated fields (index,sentence,choice1,choice2,answer), found {found + 1}{(quoted ? " (a quote is not closed)" : "")}");
        string answerText = line[(comma[3] + 1)..];
        if (!TryParseAnswer(answerText, out int answer))
        {
            if (lineNo == 1 && answerText.TrimStart() is var a && (a.Length == 0 || !char.IsAsciiDigit(a[0]))) { header = true; return null; }
            throw new TaskFileException(source, where, $"expected the answer 1 or 2 in the fifth field, found '{HellaSwagFile.Clip(answerText)}'");
        }
        string sentence;
        if (line[comma[0] + 1] == '"')
        {
            // As llama.cpp: from after the opening quote to before the character preceding the comma (the closing quote).
            // The opening quote hides commas until it closes, so that comma is at least 3 characters on.
            sentence = line.Substring(comma[0] + 2, comma[1] - comma[0] - 3);
        }
        else sentence = line[(comma[0] + 1)..comma[1]];
        int blank = sentence.IndexOf('_');
        if (blank < 0) throw new TaskFileException(source, where, $"the sentence has no blank '_': '{HellaSwagFile.Clip(sentence)}'");
        return new WinoGrandeTask(line[..comma[0]], sentence[..blank], sentence[(blank + 1)..],
            line[(comma[1] + 1)..comma[2]], line[(comma[2] + 1)..comma[3]], answer, lineNo);
    }

    /// <summary>The answer as C++'s <c>stream &gt;&gt; int</c> reads it (leading spaces, a sign, digits; the rest ignored), 1 or 2.</summary>
    private static bool TryParseAnswer(string text, out int answer)
    {
        answer = 0;
        int i = 0;
        while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
        int sign = 1;
        if (i < text.Length && (text[i] == '+' || text[i] == '-')) { sign = text[i] == '-' ? -1 : 1; i++; }
        int startDigits = i;
        long value = 0;
        while (i < text.Length && char.IsAsciiDigit(text[i]) && value < 100) value = value * 10 + (text[i++] - '0');
        if (i == startDigits) return false;
        value *= sign;
        if (value is not (1 or 2)) return false;
        answer = (int)value;
        return true;
    }

    /// <summary>The CSV text: one line per task, then an empty line (so that llama.cpp reads the last task).</summary>
    public static string Format(IEnumerable<WinoGrandeTask> tasks)
    {
        var sb = new StringBuilder();
        int n = 0;
        foreach (var t in tasks)
        {
            n++;
            if (t.Answer is not (1 or 2)) throw new ArgumentException($"task {n}: the answer is {t.Answer}, not 1 or 2", nameof(tasks));
            var sentence = t.Sentence;
            Check(t.Index, n, "index", allowComma: false);
            Check(sentence, n, "sentence", allowComma: true);
            Check(t.Choice1, n, "choice 1", allowComma: false);
            Check(t.Choice2, n, "choice 2", allowComma: false);
            if (t.First.Contains('_')) throw new ArgumentException($"task {n}: the text before the blank holds another '_'", nameof(tasks));
            sb.Append(t.Index).Append(',');
            if (sentence.Contains(',')) sb.Append('"').Append(sentence).Append('"');
            else sb.Append(sentence);
            sb.Append(',').Append(t.Choice1).Append(',').Append(t.Choice2).Append(',').Append(t.Answer.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        sb.Append('\n');
        return sb.ToString();
    }

    public static void Write(string path, IEnumerable<WinoGrandeTask> tasks)
    {
        var bytes = new UTF8Encoding(false).GetBytes(Format(tasks));
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    private static void Check(string field, int task, string what, bool allowComma)
    {
        if (field.AsSpan().IndexOfAny('\n', '\r', '"') >= 0 || (!allowComma && field.Contains(',')))
            throw new ArgumentException($"task {task}: the {what} '{HellaSwagFile.Clip(field)}' holds a line break, a quote{(allowComma ? "" : " or a comma")}, which llama.cpp's CSV reader cannot take");
    }
}
