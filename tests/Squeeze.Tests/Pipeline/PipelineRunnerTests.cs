using Squeeze.Pipeline;
using Xunit;

namespace Squeeze.Tests.Pipeline;

public sealed class PipelineRunnerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-pipeline-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>source -> double (a.txt) -> sum (b.txt); counts how often each step body runs.</summary>
    private (List<PipelineStep> Steps, Dictionary<string, int> Runs) Chain(string source, int factor, Func<string, bool>? failIn = null)
    {
        var runs = new Dictionary<string, int> { ["double"] = 0, ["sum"] = 0 };
        var output = Path.Combine(_dir, "out");
        var steps = new List<PipelineStep>
        {
            new("double", "Double", new Dictionary<string, string> { ["source"] = source }, ["a.txt"], new { factor },
                c =>
                {
                    runs["double"]++;
                    if (failIn?.Invoke("double") == true) throw new OperationCanceledException();
                    var n = int.Parse(File.ReadAllText(source));
                    File.WriteAllText(c.PathOf("a.txt"), (n * factor).ToString());
                }),
            new("sum", "Sum", new Dictionary<string, string> { ["a"] = Path.Combine(output, "a.txt") }, ["b.txt"], null,
                c =>
                {
                    runs["sum"]++;
                    if (failIn?.Invoke("sum") == true) throw new OperationCanceledException();
                    File.WriteAllText(c.PathOf("b.txt"), (int.Parse(File.ReadAllText(c.PathOf("a.txt"))) + 1).ToString());
                }),
        };
        return (steps, runs);
    }

    [Fact]
    public void A_second_run_does_no_work_and_a_changed_input_reruns_what_depends_on_it()
    {
        var source = Path.Combine(_dir, "n.txt");
        File.WriteAllText(source, "20");
        var output = Path.Combine(_dir, "out");

        var (steps, runs) = Chain(source, 2);
        var first = new PipelineRunner(output).Run(steps, cancellation: TestContext.Current.CancellationToken);
        Assert.Equal(["double", "sum"], first.Ran);
        Assert.Equal("41", File.ReadAllText(Path.Combine(output, "b.txt")));

        var second = new PipelineRunner(output).Run(steps, cancellation: TestContext.Current.CancellationToken);
        Assert.Empty(second.Ran);
        Assert.Equal(["double", "sum"], second.Cached);
        Assert.Equal(1, runs["double"]);

        // A new setting reruns the step and, since its output changed, the one after it.
        var (changed, _) = Chain(source, 3);
        Assert.Equal(["double", "sum"], new PipelineRunner(output).Run(changed, cancellation: TestContext.Current.CancellationToken).Ran);
        Assert.Equal("61", File.ReadAllText(Path.Combine(output, "b.txt")));

        // Same content rewritten (new time stamp): nothing reruns, the content hash is the same.
        File.WriteAllText(source, "20");
        File.SetLastWriteTimeUtc(source, DateTime.UtcNow.AddMinutes(1));
        Assert.Empty(new PipelineRunner(output).Run(changed, cancellation: TestContext.Current.CancellationToken).Ran);
    }

    [Fact]
    public void An_interrupted_run_resumes_at_the_step_it_was_in()
    {
        var source = Path.Combine(_dir, "n.txt");
        File.WriteAllText(source, "5");
        var output = Path.Combine(_dir, "out");
        var (steps, _) = Chain(source, 2, failIn: s => s == "sum");
        Assert.Throws<OperationCanceledException>(() => new PipelineRunner(output).Run(steps, cancellation: TestContext.Current.CancellationToken));

        var (again, runs) = Chain(source, 2);
        var result = new PipelineRunner(output).Run(again, cancellation: TestContext.Current.CancellationToken);
        Assert.Equal(["double"], result.Cached);
        Assert.Equal(["sum"], result.Ran);
        Assert.Equal(0, runs["double"]);
        Assert.Equal("11", File.ReadAllText(Path.Combine(output, "b.txt")));
        var log = File.ReadAllText(Path.Combine(output, "pipeline.log"));
        Assert.Contains("sum: cancelled", log);
        Assert.Contains("double: cached", log);
    }

    [Fact]
    public void A_deleted_output_reruns_its_step()
    {
        var source = Path.Combine(_dir, "n.txt");
        File.WriteAllText(source, "1");
        var output = Path.Combine(_dir, "out");
        var (steps, _) = Chain(source, 2);
        new PipelineRunner(output).Run(steps, cancellation: TestContext.Current.CancellationToken);
        File.Delete(Path.Combine(output, "b.txt"));
        Assert.Equal(["sum"], new PipelineRunner(output).Run(steps, cancellation: TestContext.Current.CancellationToken).Ran);
    }

    [Fact]
    public void A_step_that_does_not_write_its_output_fails()
    {
        var output = Path.Combine(_dir, "out");
        var step = new PipelineStep("lazy", "Lazy", new Dictionary<string, string>(), ["never.txt"], null, _ => { });
        Assert.Throws<InvalidOperationException>(() => new PipelineRunner(output).Run([step], cancellation: TestContext.Current.CancellationToken));
        Assert.Null(new StepCache(output).Read("lazy"));
    }
}
