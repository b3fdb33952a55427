using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Squeeze.Evaluation.Tasks;
using Xunit;

namespace Squeeze.Tests.Evaluation.Tasks;

/// <summary>The three task formats: reading as llama-perplexity reads, writing what it reads back, and one corrupt file per rule.</summary>
public sealed class TaskFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-taskfiles-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Problem(Action read) => Assert.Throws<TaskFileException>(read).Message;

    // ---- HellaSwag ----

    private const string TwoTasks = "Ctx one: a man\n2\ne0\ne1\ne2\ne3\nCtx two: a woman\n0\nf0\nf1\nf2\nf3\n";

    [Fact]
    public void HellaSwag_round_trips_and_reads_gzip_crlf_and_a_missing_final_newline()
    {
        var tasks = HellaSwagFile.Parse(TwoTasks);
        Assert.Equal(2, tasks.Count);
        Assert.Equal("Ctx two: a woman", tasks[1].Context);
        Assert.Equal(2, tasks[0].Gold);
        Assert.Equal(["f0", "f1", "f2", "f3"], tasks[1].Endings);
        Assert.Equal(TwoTasks, HellaSwagFile.Format(tasks));
        Assert.Equal(2, HellaSwagFile.Parse(TwoTasks.TrimEnd('\n')).Count);
        Assert.Equal(tasks[1].Endings, HellaSwagFile.Parse(TwoTasks.Replace("\n", "\r\n"))[1].Endings);

        var gz = Path.Combine(_dir, "hs.txt.gz");
        using (var f = File.Create(gz))
        using (var z = new GZipStream(f, CompressionLevel.Fastest))
            z.Write(Encoding.UTF8.GetBytes(TwoTasks));
        Assert.Equal(tasks.Select(t => t.Context), HellaSwagFile.Read(gz).Select(t => t.Context));
    }

    [Fact]
    public void HellaSwag_rejects_an_empty_file() => Assert.Contains("no tasks", Problem(() => HellaSwagFile.Parse("")));

    [Fact]
    public void HellaSwag_rejects_a_line_count_not_a_multiple_of_6() =>
        Assert.Contains("7 lines is not a multiple of 6", Problem(() => HellaSwagFile.Parse(TwoTasks[..TwoTasks.IndexOf("Ctx two")] + "extra\n")));

    [Theory]
    [InlineData("x")]
    [InlineData("4")]
    [InlineData("-1")]
    public void HellaSwag_rejects_a_gold_index_outside_0_to_3(string gold)
    {
        var message = Problem(() => HellaSwagFile.Parse(TwoTasks.Replace("\n0\n", $"\n{gold}\n")));
        Assert.Contains("line 8", message);
        Assert.Contains("gold ending's index", message);
    }

    [Fact]
    public void HellaSwag_rejects_invalid_utf8()
    {
        var path = Path.Combine(_dir, "bad.txt");
        File.WriteAllBytes(path, [.. Encoding.UTF8.GetBytes("Ctx "), 0xC3, 0x28, .. Encoding.UTF8.GetBytes("\n0\na\nb\nc\nd\n")]);
        Assert.Contains("not valid UTF-8", Problem(() => HellaSwagFile.Read(path)));
    }

    // ---- WinoGrande ----

    private const string Csv = "0,Sarah was a better surgeon than Maria so _ got the easier cases.,Sarah,Maria,2\n" +
                               "1,\"They feared the wine would ruin the bed, but the _ was fine.\",blanket,bed,2\n\n";

    [Fact]
    public void WinoGrande_reads_quoted_sentences_and_round_trips()
    {
        var data = WinoGrandeFile.Parse(Csv);
        Assert.Empty(data.Notes);
        Assert.Equal(2, data.Tasks.Count);
        var t = data.Tasks[1];
        Assert.Equal(("They feared the wine would ruin the bed, but the ", " was fine.", "blanket", "bed", 2), (t.First, t.Second, t.Choice1, t.Choice2, t.Answer));
        Assert.Equal(Csv, WinoGrandeFile.Format(data.Tasks));
        Assert.Equal(data.Tasks.Select(x => x with { Line = 0 }), WinoGrandeFile.Parse(WinoGrandeFile.Format(data.Tasks)).Tasks.Select(x => x with { Line = 0 }));
    }

    [Fact]
    public void WinoGrande_skips_a_header_and_like_llama_cpp_the_last_line_of_a_file_ending_in_one_newline()
    {
        var data = WinoGrandeFile.Parse("index,sentence,choice1,choice2,answer\n" + Csv.TrimEnd('\n') + "\n");
        Assert.Single(data.Tasks);
        Assert.Contains("line 3 is not read", Assert.Single(data.Notes));
        // Answers are read like C++'s stream >> int: "2\r" and "2 extra" are 2.
        Assert.Equal(2, WinoGrandeFile.Parse("0,a _ b,x,y,2 extra\n\n").Tasks[0].Answer);
    }

    [Fact]
    public void WinoGrande_rejects_a_line_with_too_few_fields() =>
        Assert.Contains("expected 5 comma-separated fields", Problem(() => WinoGrandeFile.Parse("0,a _ b,x,2\n\n")));

    [Fact]
    public void WinoGrande_rejects_an_unclosed_quote() =>
        Assert.Contains("a quote is not closed", Problem(() => WinoGrandeFile.Parse("0,\"a _ b,x,y,2\n\n")));

    [Fact]
    public void WinoGrande_rejects_a_sentence_without_a_blank() =>
        Assert.Contains("no blank", Problem(() => WinoGrandeFile.Parse("0,a b,x,y,2\n\n")));

    [Theory]
    [InlineData("3")]
    [InlineData("x")]
    public void WinoGrande_rejects_an_answer_other_than_1_or_2(string answer) =>
        Assert.Contains("line 2: expected the answer 1 or 2", Problem(() => WinoGrandeFile.Parse($"0,a _ b,x,y,1\n1,a _ b,x,y,{answer}\n\n")));

    [Fact]
    public void WinoGrande_rejects_a_file_without_tasks() =>
        Assert.Contains("no tasks", Problem(() => WinoGrandeFile.Parse("index,sentence,choice1,choice2,answer\n\n")));

    [Fact]
    public void WinoGrande_writer_refuses_what_llama_cpp_cannot_read() =>
        Assert.Throws<ArgumentException>(() => WinoGrandeFile.Format([new WinoGrandeTask("0", "a ", " b", "x,y", "z", 1)]));

    // ---- multiple choice ----

    private static readonly MultipleChoiceTask[] Tasks =
    [
        new("Q1?", new(["yes", "no"], [1, 0]), new(["yes", "maybe", "no"], [1, 1, 0])),
        new("Q2 ünïcode?", new(["a", "b", "c"], [0, 0, 1]), MultipleChoiceAnswers.Empty),
    ];

    [Fact]
    public void Multiple_choice_round_trips_with_offsets_where_the_tasks_start()
    {
        var bytes = MultipleChoiceFile.Format(Tasks);
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(bytes));
        Assert.Equal(12u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        // Task 1: question (4 + 3), mc1 (4 + 2x(4+len) + 2x4), mc2 (4 + 3x(4+len) + 3x4).
        uint second = 12 + (4 + 3) + (4 + 4 + 3 + 4 + 2 + 8) + (4 + 4 + 3 + 4 + 5 + 4 + 2 + 12);
        Assert.Equal(second, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        var back = MultipleChoiceFile.Parse(bytes);
        Assert.Equal(Tasks.Select(t => t.Question), back.Select(t => t.Question));
        Assert.Equal(Tasks[0].Mc2.Answers, back[0].Mc2.Answers);
        Assert.Equal(Tasks[1].Mc1.Labels, back[1].Mc1.Labels);
    }

    /// <summary>A valid file with a change applied: (offset, bytes) patches, or a truncation.</summary>
    private static byte[] Corrupt(Func<byte[], byte[]> change) => change(MultipleChoiceFile.Format(Tasks));

    private static byte[] Put(byte[] b, int at, uint value) { BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), value); return b; }

    private static string McProblem(byte[] bytes) => Problem(() => MultipleChoiceFile.Parse(bytes));

    // Offsets in Tasks' file: 0 n_task, 4/8 positions, 12 question length, 19 mc1 count, 23 "yes" length, 30 "no", 36 labels, 44 mc2 count.
    [Fact] public void Multiple_choice_rejects_a_file_shorter_than_its_task_count() => Assert.Contains("ends inside the task count", McProblem([1, 0]));
    [Fact] public void Multiple_choice_rejects_zero_tasks() => Assert.Contains("no tasks", McProblem([0, 0, 0, 0]));
    [Fact] public void Multiple_choice_rejects_a_task_count_beyond_the_offsets_present() => Assert.Contains("bytes of offsets", McProblem(Corrupt(b => Put(b, 0, 1_000_000))));
    [Fact] public void Multiple_choice_rejects_an_offset_that_is_not_where_the_task_starts() => Assert.Contains("task 2's offset", McProblem(Corrupt(b => Put(b, 8, 13))));
    [Fact] public void Multiple_choice_rejects_a_string_longer_than_the_file() => Assert.Contains("only", McProblem(Corrupt(b => Put(b, 12, 10_000))));
    [Fact] public void Multiple_choice_rejects_more_than_100_answers() => Assert.Contains("at most 100", McProblem(Corrupt(b => Put(b, 19, 101))));
    [Fact] public void Multiple_choice_rejects_an_empty_question() => Assert.Contains("empty question", McProblem(MultipleChoiceFile.Format(Tasks).Length is var _ ? EmptyQuestion() : []));
    [Fact] public void Multiple_choice_rejects_a_task_without_mc1_answers() => Assert.Contains("no mc1 answers", McProblem(Rebuild(b => Put(b, 19, 0), trim: 19 + 4, resume: 44)));
    [Fact] public void Multiple_choice_rejects_an_empty_answer() => Assert.Contains("answer 1 is empty", McProblem(Rebuild(b => Put(b, 23, 0), trim: 27, resume: 30)));
    [Fact] public void Multiple_choice_rejects_a_label_other_than_0_or_1() => Assert.Contains("not 0 or 1", McProblem(Corrupt(b => Put(b, 36, 2))));
    [Fact] public void Multiple_choice_rejects_mc1_without_a_correct_answer() => Assert.Contains("labelled correct", McProblem(Corrupt(b => Put(b, 36, 0))));
    [Fact] public void Multiple_choice_rejects_bytes_after_the_last_task() => Assert.Contains("1 bytes follow the last task", McProblem([.. MultipleChoiceFile.Format(Tasks), 0]));
    [Fact] public void Multiple_choice_rejects_a_truncated_label_list() => Assert.Contains("ends inside", McProblem(MultipleChoiceFile.Format(Tasks)[..^2]));
    [Fact] public void Multiple_choice_rejects_invalid_utf8() => Assert.Contains("not valid UTF-8", McProblem(Corrupt(b => { b[16] = 0xFF; return b; })));

    // Cuts bytes [trim, resume) out of the first task (after a patch) and fixes task 2's offset.
    private static byte[] Rebuild(Func<byte[], byte[]> patch, int trim, int resume)
    {
        var b = patch(MultipleChoiceFile.Format(Tasks));
        var cut = b[..trim].Concat(b[resume..]).ToArray();
        return Put(cut, 8, BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8)) - (uint)(resume - trim));
    }

    private static byte[] EmptyQuestion() => Rebuild(b => Put(b, 12, 0), trim: 16, resume: 19);
}
