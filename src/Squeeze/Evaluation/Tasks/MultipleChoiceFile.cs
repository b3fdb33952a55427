using System.Buffers.Binary;
using System.Text;
using Squeeze.IO;

namespace Squeeze.Evaluation.Tasks;

/// <summary>Possible answers with their labels (1 = correct, 0 = wrong).</summary>
public sealed record MultipleChoiceAnswers(IReadOnlyList<string> Answers, IReadOnlyList<int> Labels)
{
    public static MultipleChoiceAnswers Empty { get; } = new([], []);
}

/// <summary>
/// One multiple-choice task: a question (or a context to continue) and its answers. llama-perplexity scores
/// <see cref="Mc1"/> (a single correct answer); <see cref="Mc2"/> (TruthfulQA's several correct answers) is stored but not scored.
/// </summary>
public sealed record MultipleChoiceTask(string Question, MultipleChoiceAnswers Mc1, MultipleChoiceAnswers Mc2);

/// <summary>
/// llama.cpp's binary multiple-choice file (ARC, MMLU, TruthfulQA, HellaSwag; ikawrakow/validation-datasets-for-llama.cpp),
/// little-endian:
/// <code>
/// uint32 n_task; uint32 task_pos[n_task]   (byte offset of each task from the file's start)
/// task:    string question; answers mc1; answers mc2
/// answers: uint32 n (at most 100); string answer[n]; int32 label[n]
/// string:  uint32 length; length bytes (UTF-8, no terminator)
/// </code>
/// llama-perplexity reads the tasks one after the other when it scores them all and seeks to <c>task_pos</c> when it
/// samples some, so Squeeze requires the offsets to be where the tasks are.
/// </summary>
public static class MultipleChoiceFile
{
    /// <summary>llama.cpp's limit on answers per task.</summary>
    public const int MaxAnswers = 100;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    public static IReadOnlyList<MultipleChoiceTask> Read(string path) => Parse(File.ReadAllBytes(path), path);

    /// <summary>Reads and validates every task: counts and lengths against the bytes left, offsets, UTF-8, labels 0 or 1,
    /// a question, at least one answer, no empty answer, at least one correct answer in mc1, no bytes after the last task.</summary>
    public static IReadOnlyList<MultipleChoiceTask> Parse(ReadOnlySpan<byte> data, string source = "multiple-choice data")
    {
        var r = new Reader(data, source);
        uint nTask = r.UInt32("the task count");
        if (nTask == 0) throw new TaskFileException(source, "byte 0", "no tasks: the task count is 0");
        if (nTask > (ulong)(data.Length - 4) / 4)
            throw new TaskFileException(source, "byte 0", $"the task count {nTask} needs {4UL * nTask} bytes of offsets; only {data.Length - 4} bytes follow");
        var positions = new uint[nTask];
        for (int i = 0; i < nTask; i++) positions[i] = r.UInt32("a task offset");
        var tasks = new List<MultipleChoiceTask>((int)nTask);
        for (int i = 0; i < nTask; i++)
        {
            if (positions[i] != r.Offset)
                throw new TaskFileException(source, $"byte {4 + 4 * i}", $"task {i + 1}'s offset is {positions[i]}, but the task starts at byte {r.Offset}");
            string task = $"task {i + 1}";
            var question = r.String($"{task}'s question");
            if (question.Length == 0) throw new TaskFileException(source, $"byte {r.Offset}", $"{task} has an empty question");
            int mc1At = r.Offset;
            var mc1 = Answers(ref r, task, "mc1");
            if (mc1.Answers.Count == 0) throw new TaskFileException(source, $"byte {mc1At}", $"{task} has no mc1 answers");
            if (!mc1.Labels.Contains(1)) throw new TaskFileException(source, $"byte {mc1At}", $"{task}: no mc1 answer is labelled correct (1)");
            var mc2 = Answers(ref r, task, "mc2");
            tasks.Add(new MultipleChoiceTask(question, mc1, mc2));
        }
        if (r.Offset != data.Length) throw new TaskFileException(source, $"byte {r.Offset}", $"{data.Length - r.Offset} bytes follow the last task");
        return tasks;
    }

    private static MultipleChoiceAnswers Answers(ref Reader r, string task, string set)
    {
        int at = r.Offset;
        uint n = r.UInt32($"{task}'s {set} answer count");
        if (n > MaxAnswers) throw new TaskFileException(r.Source, $"byte {at}", $"{task} has {n} {set} answers; llama.cpp takes at most {MaxAnswers}");
        var answers = new string[n];
        for (int j = 0; j < n; j++)
        {
            int a = r.Offset;
            answers[j] = r.String($"{task}'s {set} answer {j + 1}");
            if (answers[j].Length == 0) throw new TaskFileException(r.Source, $"byte {a}", $"{task}'s {set} answer {j + 1} is empty");
        }
        var labels = new int[n];
        for (int j = 0; j < n; j++)
        {
            int a = r.Offset;
            labels[j] = (int)r.UInt32($"{task}'s {set} labels");
            if (labels[j] is not (0 or 1)) throw new TaskFileException(r.Source, $"byte {a}", $"{task}'s {set} label {j + 1} is {labels[j]}, not 0 or 1");
        }
        return new MultipleChoiceAnswers(answers, labels);
    }

    private ref struct Reader(ReadOnlySpan<byte> data, string source)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        public readonly string Source = source;
        public int Offset;

        public uint UInt32(string what)
        {
            if (_data.Length - Offset < 4) throw new TaskFileException(Source, $"byte {Offset}", $"the file ends inside {what} ({_data.Length - Offset} of 4 bytes)");
            uint v = BinaryPrimitives.ReadUInt32LittleEndian(_data[Offset..]);
            Offset += 4;
            return v;
        }

        public string String(string what)
        {
            int at = Offset;
            uint length = UInt32($"the length of {what}");
            if (length > (uint)(_data.Length - Offset))
                throw new TaskFileException(Source, $"byte {at}", $"{what} is {length} bytes long; only {_data.Length - Offset} bytes are left");
            var bytes = _data.Slice(Offset, (int)length);
            Offset += (int)length;
            try { return StrictUtf8.GetString(bytes); }
            catch (DecoderFallbackException) { throw new TaskFileException(Source, $"byte {at}", $"{what} is not valid UTF-8"); }
        }
    }

    /// <summary>The file's bytes.</summary>
    public static byte[] Format(IReadOnlyList<MultipleChoiceTask> tasks)
    {
        if (tasks.Count == 0) throw new ArgumentException("a multiple-choice file needs at least one task", nameof(tasks));
        var body = new MemoryStream();
        var positions = new uint[tasks.Count];
        long header = 4L + 4L * tasks.Count;
        for (int i = 0; i < tasks.Count; i++)
        {
            var t = tasks[i];
            positions[i] = checked((uint)(header + body.Length));
            if (t.Question.Length == 0) throw new ArgumentException($"task {i + 1} has an empty question", nameof(tasks));
            if (t.Mc1.Answers.Count == 0 || !t.Mc1.Labels.Contains(1)) throw new ArgumentException($"task {i + 1} needs mc1 answers with a correct one", nameof(tasks));
            WriteString(body, t.Question);
            WriteAnswers(body, t.Mc1, i);
            WriteAnswers(body, t.Mc2, i);
        }
        var output = new MemoryStream();
        WriteUInt32(output, (uint)tasks.Count);
        foreach (var p in positions) WriteUInt32(output, p);
        body.Position = 0;
        body.CopyTo(output);
        return output.ToArray();
    }

    public static void Write(string path, IReadOnlyList<MultipleChoiceTask> tasks)
    {
        var bytes = Format(tasks);
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    private static void WriteAnswers(Stream s, MultipleChoiceAnswers a, int task)
    {
        if (a.Answers.Count != a.Labels.Count) throw new ArgumentException($"task {task + 1}: {a.Answers.Count} answers but {a.Labels.Count} labels");
        if (a.Answers.Count > MaxAnswers) throw new ArgumentException($"task {task + 1}: {a.Answers.Count} answers; llama.cpp takes at most {MaxAnswers}");
        WriteUInt32(s, (uint)a.Answers.Count);
        foreach (var answer in a.Answers)
        {
            if (answer.Length == 0) throw new ArgumentException($"task {task + 1} has an empty answer");
            WriteString(s, answer);
        }
        foreach (var label in a.Labels)
        {
            if (label is not (0 or 1)) throw new ArgumentException($"task {task + 1}: label {label} is not 0 or 1");
            WriteUInt32(s, (uint)label);
        }
    }

    private static void WriteString(Stream s, string text)
    {
        var bytes = StrictUtf8.GetBytes(text);
        WriteUInt32(s, (uint)bytes.Length);
        s.Write(bytes);
    }

    private static void WriteUInt32(Stream s, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        s.Write(b);
    }
}
