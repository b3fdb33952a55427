using System.Text.Json;
using Xunit;

namespace Squeeze.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class DatasetCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-dataset-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Convert_writes_the_task_file_and_a_json_summary()
    {
        var folder = Path.Combine(TestData.Require("eval"), "winogrande");
        var output = Path.Combine(_dir, "wg.csv");
        var json = Path.Combine(_dir, "wg.json");
        var (code, stdout, stderr) = CliHarness.Run("dataset", "convert", Path.Combine(folder, "dev.jsonl"), "--labels", Path.Combine(folder, "dev-labels.lst"), "-o", output, "--json", json);
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Contains("1267 tasks (WinoGrandeJsonl) -> wg.csv (winogrande", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(1267, doc.RootElement.GetProperty("tasks").GetInt32());
        Assert.Equal("winogrande-jsonl", doc.RootElement.GetProperty("kind").GetString());
        Assert.Equal(new FileInfo(output).Length, doc.RootElement.GetProperty("bytes").GetInt64());
    }

    [Fact]
    public void Hellaswag_becomes_multiple_choice_on_request()
    {
        var input = Path.Combine(_dir, "h.txt");
        File.WriteAllText(input, "c\n2\na\nb\nc\nd\n");
        var output = Path.Combine(_dir, "h.bin");
        var (code, stdout, _) = CliHarness.Run("dataset", "convert", input, "-o", output, "--to", "multiple-choice");
        Assert.Equal(0, code);
        Assert.Contains("(multiple-choice", stdout);
        Assert.Equal([0, 0, 1, 0], Squeeze.Evaluation.Tasks.MultipleChoiceFile.Read(output)[0].Mc1.Labels);
    }

    [Theory]
    [InlineData("--to", "csv", "--to: 'csv' is not one of")]
    [InlineData("--from", "squad", "--from: 'squad' is not one of")]
    public void Bad_choices_are_one_line_errors(string option, string value, string message)
    {
        var input = Path.Combine(_dir, "h.txt");
        File.WriteAllText(input, "c\n2\na\nb\nc\nd\n");
        var (code, _, stderr) = CliHarness.Run("dataset", "convert", input, "-o", Path.Combine(_dir, "o"), option, value);
        Assert.Equal(1, code);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public void A_corrupt_set_is_one_line_error_naming_the_place()
    {
        var input = Path.Combine(_dir, "bad.txt");
        File.WriteAllText(input, "c\nx\na\nb\nc\nd\n");
        var (code, _, stderr) = CliHarness.Run("dataset", "convert", input, "-o", Path.Combine(_dir, "o.txt"));
        Assert.Equal(1, code);
        Assert.StartsWith($"squeeze: {input}: line 2: expected the gold ending's index", stderr);
        Assert.False(File.Exists(Path.Combine(_dir, "o.txt")));
    }
}
