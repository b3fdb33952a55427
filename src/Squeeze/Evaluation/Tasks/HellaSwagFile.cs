using System.Globalization;
using System.Text;
using Squeeze.IO;

namespace Squeeze.Evaluation.Tasks;

/// <summary>One HellaSwag task: a context ("activity_label: ctx"), four endings, the index of the gold one.</summary>
public sealed record HellaSwagTask(string Context, int Gold, IReadOnlyList<string> Endings);

/// <summary>
/// llama.cpp's HellaSwag file: 6 lines per task, the context, the gold ending's index (0-3), the 4 endings
/// (klosax/hellaswag_text_data, as llama-perplexity <c>--hellaswag</c> reads it). Gzip is read transparently.
/// </summary>
public static class HellaSwagFile
{
    public const int LinesPerTask = 6, EndingCount = 4;

    public static IReadOnlyList<HellaSwagTask> Read(string path) => Parse(TaskText.ReadText(path), path);

    /// <summary>
    /// Parses the text as llama-perplexity does after <c>-f</c> (one final newline dropped, lines split at '\n'), except
    /// that a '\r' before a newline is dropped rather than kept in the context or ending.
    /// </summary>
    public static IReadOnlyList<HellaSwagTask> Parse(string text, string source = "HellaSwag data")
    {
        var lines = TaskText.Lines(TaskText.AsPrompt(text));
        if (lines.Count == 0) throw new TaskFileException(source, "line 1", "no tasks: the file is empty");
        if (lines.Count % LinesPerTask != 0)
            throw new TaskFileException(source, $"line {lines.Count}", $"{lines.Count} lines is not a multiple of {LinesPerTask} (context, gold index, {EndingCount} endings per task)");
        var tasks = new List<HellaSwagTask>(lines.Count / LinesPerTask);
        for (int i = 0; i < lines.Count; i += LinesPerTask)
        {
            var goldText = lines[i + 1];
            if (!int.TryParse(goldText, NumberStyles.None, CultureInfo.InvariantCulture, out int gold) || gold >= EndingCount)
                throw new TaskFileException(source, $"line {i + 2}", $"expected the gold ending's index 0-{EndingCount - 1} (task {i / LinesPerTask + 1}), found '{Clip(goldText)}'");
            tasks.Add(new HellaSwagTask(lines[i], gold, [lines[i + 2], lines[i + 3], lines[i + 4], lines[i + 5]]));
        }
        return tasks;
    }

    /// <summary>The file's text: 6 lines per task, each ending in '\n'.</summary>
    public static string Format(IEnumerable<HellaSwagTask> tasks)
    {
        var sb = new StringBuilder();
        int n = 0;
        foreach (var t in tasks)
        {
            n++;
            if (t.Endings.Count != EndingCount) throw new ArgumentException($"task {n} has {t.Endings.Count} endings, not {EndingCount}", nameof(tasks));
            if ((uint)t.Gold >= EndingCount) throw new ArgumentException($"task {n}: gold index {t.Gold} is not 0-{EndingCount - 1}", nameof(tasks));
            Line(sb, t.Context, n);
            sb.Append(t.Gold.ToString(CultureInfo.InvariantCulture)).Append('\n');
            foreach (var e in t.Endings) Line(sb, e, n);
        }
        return sb.ToString();
    }

    /// <summary>Writes the tasks atomically (UTF-8, '\n' line ends).</summary>
    public static void Write(string path, IEnumerable<HellaSwagTask> tasks)
    {
        var bytes = new UTF8Encoding(false).GetBytes(Format(tasks));
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    private static void Line(StringBuilder sb, string text, int task)
    {
        if (text.AsSpan().IndexOfAny('\n', '\r') >= 0) throw new ArgumentException($"task {task}: a line break inside '{Clip(text)}' cannot be stored in the 6-line format");
        sb.Append(text).Append('\n');
    }

    internal static string Clip(string s) => s.Length <= 60 ? s : s[..57] + "...";
}
