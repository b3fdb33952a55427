using System.Text;
using Squeeze.Evaluation.Datasets;
using Squeeze.Evaluation.Tasks;
using Xunit;

namespace Squeeze.Tests.Evaluation.Datasets;

/// <summary>Each set's usual original into llama.cpp's format, spot-checked against the files llama.cpp's users download.</summary>
public sealed class DatasetConverterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-datasets-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }

    [Fact]
    public void HellaSwag_jsonl_is_preprocessed_as_llama_cpps_file_was()
    {
        // Two records shaped like rowanz/hellaswag's hellaswag_val.jsonl; the expected lines are tasks 5001 and 1 of
        // hellaswag_val_full.txt (klosax/hellaswag_text_data), which llama.cpp's scripts download.
        var jsonl = Write("hellaswag_val.jsonl",
            """
            {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "ctx": "A man is sitting on a roof. he", "split": "val", "split_type": "indomain", "label": 3, "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "source_id": "activitynet~v_-JhWjGDPHMY"}
            {"ind": 1, "activity_label": "Personal Care and Style", "ctx": "[header] How to buy a wedding band for men [title] Find a ring suitable for his lifestyle. [step] Your fiancé is going to wear this ring every day.", "label": "1", "endings": ["[substeps] A good ring will have: heart attached.", "Men with active lifestyles  might prefer platinum.", "c", "A girl would get a ring when she gets married. [title] Consider the person's other interests."]}
            """);
        Assert.Equal(DatasetKind.HellaSwagJsonl, DatasetConverter.Detect(jsonl));
        var data = DatasetConverter.Load(jsonl);
        var output = Path.Combine(_dir, "hs.txt");
        DatasetConverter.Write(data, output);
        Assert.Equal(
            "Roof shingle removal: A man is sitting on a roof. he\n3\nis using wrap to wrap a pair of skis.\nis ripping level tiles off.\nis holding a rubik's cube.\nstarts pulling up roofing on a roof.\n" +
            "Personal Care and Style: How to buy a wedding band for men. Find a ring suitable for his lifestyle. Your fiancé is going to wear this ring every day.\n1\n" +
            "A good ring will have: heart attached.\nMen with active lifestyles might prefer platinum.\nc\nA girl would get a ring when she gets married.. Consider the person's other interests.\n",
            File.ReadAllText(output));
    }

    [Fact]
    public void Shared_hellaswag_file_round_trips_byte_for_byte_and_becomes_multiple_choice()
    {
        var source = Path.Combine(TestData.Require("eval"), "hellaswag", "hellaswag_val_full.txt.gz");
        var data = DatasetConverter.Load(source);
        Assert.Equal(10042, data.Count);
        var text = Path.Combine(_dir, "hs.txt");
        DatasetConverter.Write(data, text);
        Assert.Equal(Encoding.UTF8.GetString(TaskTextBytes(source)), File.ReadAllText(text));
        var bin = Path.Combine(_dir, "hs.bin");
        Assert.Equal(TaskFormat.MultipleChoice, DatasetConverter.Write(data, bin, TaskFormat.MultipleChoice));
        var mc = MultipleChoiceFile.Read(bin);
        Assert.Equal(data.HellaSwag![7].Context, mc[7].Question);
        Assert.Equal(data.HellaSwag[7].Gold, mc[7].Mc1.Labels.ToList().IndexOf(1));
    }

    private static byte[] TaskTextBytes(string gz)
    {
        using var z = new System.IO.Compression.GZipStream(File.OpenRead(gz), System.IO.Compression.CompressionMode.Decompress);
        using var m = new MemoryStream();
        z.CopyTo(m);
        return m.ToArray();
    }

    [Fact]
    public void WinoGrande_dev_jsonl_and_labels_become_llama_cpps_csv()
    {
        var folder = Path.Combine(TestData.Require("eval"), "winogrande");
        var data = DatasetConverter.Load(Path.Combine(folder, "dev.jsonl"), labels: Path.Combine(folder, "dev-labels.lst"));
        var csv = Path.Combine(_dir, "wg.csv");
        DatasetConverter.Write(data, csv);
        var lines = File.ReadAllLines(csv);
        // The first row as llama.cpp's source comment quotes ikawrakow/winogrande-eval-for-llama.cpp.
        Assert.Equal("0,Sarah was a much better surgeon than Maria so _ always got the easier cases.,Sarah,Maria,2", lines[0]);
        Assert.Equal("2,\"They were worried the wine would ruin the bed and the blanket, but the _ was't ruined.\",blanket,bed,2", lines[2]);
        Assert.Equal(1267, WinoGrandeFile.Read(csv).Tasks.Count); // the closing empty line lets llama.cpp read the last task
    }

    [Fact]
    public void WinoGrande_labels_must_match_the_tasks()
    {
        var jsonl = Write("dev.jsonl", "{\"sentence\": \"a _ b\", \"option1\": \"x\", \"option2\": \"y\"}\n{\"sentence\": \"c _ d\", \"option1\": \"x\", \"option2\": \"y\"}\n");
        var labels = Write("labels.lst", "1\n");
        Assert.Contains("1 labels for 2 tasks", Assert.Throws<TaskFileException>(() => DatasetConverter.Load(jsonl, labels: labels)).Message);
        Assert.Contains("not 1 or 2", Assert.Throws<TaskFileException>(() => DatasetConverter.Load(jsonl, labels: Write("l2.lst", "1\n3\n"))).Message);
        Assert.Equal(2, DatasetConverter.Load(jsonl, labels: Write("l3.lst", "1\n2\n")).WinoGrande![1].Answer);
    }

    [Fact]
    public void Arc_in_ai2_and_hugging_face_layouts()
    {
        var ai2 = Write("ARC-Easy-Dev.jsonl",
            """
            {"id": "Mercury_7220990", "question": {"stem": "Which factor will most likely cause a person to develop a fever?", "choices": [{"text": "a leg muscle relaxing after exercise", "label": "A"}, {"text": "a bacterial population in the bloodstream", "label": "B"}, {"text": "several viral particles on the skin", "label": "C"}, {"text": "carbohydrates being digested in the stomach", "label": "D"}]}, "answerKey": "B"}
            """);
        var hf = Write("arc_hf.jsonl",
            """
            {"id": "x1", "question": "George wants to warm his hands quickly by rubbing them. Which skin surface will produce the most heat?", "choices": {"text": ["dry palms", "wet palms", "palms covered with oil", "palms covered with lotion"], "label": ["1", "2", "3", "4"]}, "answerKey": "1"}
            """);
        var a = DatasetConverter.Load(ai2).MultipleChoice!.Single();
        Assert.Equal("Which factor will most likely cause a person to develop a fever?", a.Question);
        Assert.Equal([0, 1, 0, 0], a.Mc1.Labels);
        Assert.Equal("a bacterial population in the bloodstream", a.Mc1.Answers[1]);
        var h = DatasetConverter.Load(hf).MultipleChoice!.Single();
        Assert.Equal([1, 0, 0, 0], h.Mc1.Labels);
        Assert.Equal(DatasetKind.ArcJsonl, DatasetConverter.Detect(hf));
        Assert.Contains("names none of the choices", Assert.Throws<TaskFileException>(() => DatasetConverter.Load(Write("bad.jsonl", File.ReadAllText(hf).Replace("\"answerKey\": \"1\"", "\"answerKey\": \"E\"")))).Message);
    }

    [Fact]
    public void Mmlu_original_and_headered_csv_and_folders()
    {
        var original = Write("abstract_algebra_dev.csv", "\"Find all c in Z_3, such that Z_3[x]/(x^2 + c) is a field.\",0,1,2,3,B\nWhat is 1+1?,1,2,\"3, or more\",4,B\n");
        var tasks = DatasetConverter.Load(original).MultipleChoice!;
        Assert.Equal(2, tasks.Count);
        Assert.Equal("Find all c in Z_3, such that Z_3[x]/(x^2 + c) is a field.", tasks[0].Question);
        Assert.Equal(["1", "2", "3, or more", "4"], tasks[1].Mc1.Answers);
        Assert.Equal([0, 1, 0, 0], tasks[1].Mc1.Labels);

        var shared = DatasetConverter.Load(Path.Combine(TestData.Require("eval"), "mmlu", "dev")).MultipleChoice!;
        Assert.Equal(285, shared.Count);
        Assert.Equal("Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.", shared[0].Question); // abstract_algebra first, headered file
        Assert.Equal([0, 1, 0, 0], shared[0].Mc1.Labels);
        Assert.Contains("not A-D or 0-3", Assert.Throws<TaskFileException>(() => DatasetConverter.Load(Write("bad.csv", "q,a,b,c,d,E\n"))).Message);
    }

    [Fact]
    public void TruthfulQa_json_and_csv()
    {
        var folder = Path.Combine(TestData.Require("eval"), "truthfulqa");
        var json = DatasetConverter.Load(Path.Combine(folder, "mc_task.json")).MultipleChoice!;
        Assert.Equal(817, json.Count);
        Assert.Equal("What happens if you eat a pomegranate?", json[0].Question);
        Assert.Equal("Nothing in particular happens when you eat a pomegranate.", json[0].Mc1.Answers[0]);
        Assert.Equal([1, 0, 0, 0], json[0].Mc1.Labels);
        Assert.Equal([1, 1, 1, 0, 0, 0], json[0].Mc2.Labels);

        var csv = DatasetConverter.Load(Path.Combine(folder, "TruthfulQA.csv")).MultipleChoice!;
        Assert.Equal(817, csv.Count);
        Assert.Equal("What happens to you if you eat watermelon seeds?", csv[0].Question);
        Assert.Equal("The watermelon seeds pass through your digestive system", csv[0].Mc1.Answers[0]);
        Assert.Equal("You grow watermelons in your stomach", csv[0].Mc1.Answers[1]);
        Assert.Equal(1, csv[0].Mc1.Labels.Sum());
    }

    [Fact]
    public void Unknown_inputs_are_refused_with_a_reason()
    {
        Assert.Contains("not a known JSONL set", Assert.Throws<TaskFileException>(() => DatasetConverter.Load(Write("x.jsonl", "{\"a\": 1}\n"))).Message);
        Assert.Contains("not valid JSON", Assert.Throws<TaskFileException>(() => DatasetConverter.Load(Write("y.jsonl", "{\"option1\": \n"))).Message);
        Assert.Throws<FileNotFoundException>(() => DatasetConverter.Load(Path.Combine(_dir, "missing.csv")));
        var hs = DatasetConverter.Load(Write("h.txt", "c\n0\na\nb\nc\nd\n"));
        Assert.Throws<InvalidInputException>(() => DatasetConverter.Write(hs, Path.Combine(_dir, "o.csv"), TaskFormat.WinoGrande));
    }
}
