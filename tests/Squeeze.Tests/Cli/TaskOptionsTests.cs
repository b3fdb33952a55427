using System.Text.Json;
using Xunit;

namespace Squeeze.Tests.Cli;

/// <summary>The task modes of <c>squeeze perplexity</c> (<see cref="Squeeze.Cli.Commands.TaskOptions"/>).</summary>
[Collection(ConsoleCollection.Name)]
public sealed class TaskOptionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-task-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int ExitCode, string Out, string Err) Run(params string[] args) => CliHarness.Run(["perplexity", "-t", "1", .. args]);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Hellaswag_prints_llama_cpps_lines_and_saves_json()
    {
        var data = Write("hs.txt", """
            Playing outside: Lily went to the park with her mom. She
            0
            saw a big red ball and ran to get it.
            ate the green sky and the moon.
            was a little car that could not talk.
            said the sun is a cat.
            Toys: Sue had a new doll. She
            1
            gave it a hug
            gave it a hug and a kiss every day
            gave the dog a bath in the tub
            did not like the big, loud truck

            """);
        var json = Path.Combine(_dir, "hs.json");
        var (code, stdout, stderr) = Run("-m", TestData.StoriesModel, "-f", data, "--hellaswag", "--json", json);
        Assert.Equal("", stderr);
        Assert.Equal(0, code);
        Assert.Contains("hellaswag_score : selecting 2 randomized tasks.", stdout);
        Assert.Matches(@"task\tacc_norm\t95% confidence interval\n1\t\d+\.\d{8}%\t\[\d+\.\d{4}%, \d+\.\d{4}%\]\n2\t", stdout.ReplaceLineEndings("\n"));
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal("hellaswag", doc.RootElement.GetProperty("squeeze_result").GetString());
        Assert.Equal("stories260K.gguf", doc.RootElement.GetProperty("model").GetProperty("file").GetString());
        var root = doc.RootElement.GetProperty("result");
        Assert.Equal("HellaSwag", root.GetProperty("task").GetString());
        Assert.Equal("hellaswag", root.GetProperty("mode").GetString());
        Assert.Equal(2, root.GetProperty("tasks").GetInt32());
        Assert.Equal(2, root.GetProperty("outcomes").GetArrayLength());
        Assert.Equal(4, root.GetProperty("outcomes")[0].GetProperty("scores").GetArrayLength());
        Assert.InRange(root.GetProperty("accuracy").GetDouble(), 0, 100);
    }

    [Fact]
    public void Winogrande_prints_its_final_score()
    {
        var data = Write("wg.csv", "0,Tom gave the ball to Sam because _ was tired of playing with it all day long.,Tom,Sam,1\n1,\"The dog chased the cat, so _ ran.\",dog,cat,2\n\n");
        var (code, stdout, _) = Run("-m", TestData.StoriesModel, "-f", data, "--winogrande");
        Assert.Equal(0, code);
        Assert.Matches(@"Final Winogrande score\(2 tasks\): \d+\.\d{4} \+/- \d+\.\d{4}", stdout);
    }

    [Fact]
    public void Multiple_choice_reads_the_binary_file_and_prints_random_chance()
    {
        var data = Path.Combine(_dir, "mc.bin");
        Squeeze.Evaluation.Tasks.MultipleChoiceFile.Write(data,
            [new("What color is the sky?", new(["blue", "green", "red"], [1, 0, 0]), Squeeze.Evaluation.Tasks.MultipleChoiceAnswers.Empty)]);
        var json = Path.Combine(_dir, "mc.json");
        var (code, stdout, _) = Run("-m", TestData.StoriesModel, "-bf", data, "--multiple-choice", "--json", json);
        Assert.Equal(0, code);
        Assert.Contains("Final result: ", stdout);
        Assert.Contains("Random chance: 33.3333 +/- ", stdout);
        // squeeze report reads result.task as the column and result.accuracy as its value.
        var report = Squeeze.Evaluation.ResultFile.Read(json).Single();
        Assert.Equal("multiple-choice", report.Kind);
        Assert.Equal("mc", report.Result["task"]!.GetValue<string>());
        Assert.InRange(report.Result["accuracy"]!.GetValue<double>(), 0, 100);
        Assert.Equal(33.3333, report.Result["random_chance"]!.GetValue<double>(), 3);
    }

    [Fact]
    public void Errors_are_one_line()
    {
        var data = Write("hs.txt", "c\n9\na\nb\nc\nd\n");
        var (code, _, stderr) = Run("-m", TestData.StoriesModel, "-f", data, "--hellaswag");
        Assert.Equal(1, code);
        Assert.Contains("line 2: expected the gold ending's index", stderr);

        (code, _, stderr) = Run("-m", TestData.StoriesModel, "-f", data, "--hellaswag", "--winogrande");
        Assert.Equal(1, code);
        Assert.Contains("choose one of", stderr);

        (code, _, stderr) = Run("-m", TestData.StoriesModel, "--multiple-choice");
        Assert.Equal(1, code);
        Assert.Contains("-bf FILE", stderr);

        (code, _, stderr) = Run("-m", TestData.StoriesModel, "-f", data, "--hellaswag", "--hellaswag-tasks", "0");
        Assert.Equal(1, code);
        Assert.Contains("--hellaswag-tasks must be at least 1", stderr);
    }

    [Fact]
    public void A_task_longer_than_the_context_is_refused()
    {
        var data = Write("hs.txt", "Playing outside: Lily went to the park with her mom. She\n0\nsaw a ball.\nate.\nran.\nsat.\n");
        var (code, _, stderr) = Run("-m", TestData.StoriesModel, "-f", data, "--hellaswag", "-c", "4");
        Assert.Equal(1, code);
        Assert.Contains("does not fit in the context window of 16 tokens", stderr);
    }
}
