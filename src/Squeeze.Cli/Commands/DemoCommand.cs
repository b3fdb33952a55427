using System.CommandLine;
using System.Text;
using Squeeze.IO;
using Squeeze.Pipeline;

namespace Squeeze.Cli.Commands;

/// <summary>
/// <c>squeeze demo [-o FOLDER] [-t N]</c>: the pipeline of <c>squeeze run</c>, offline, on a small Qwen3 checkpoint
/// with random weights that it writes itself, with calibration, evaluation and task texts shipped in Squeeze.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--output", "-o") { Description = "Folder for the demo's checkpoint, data, models and report.", DefaultValueFactory = _ => new DirectoryInfo("squeeze-demo") };
        var threads = new Option<int>("--threads", "-t") { Description = "Worker threads (default: physical cores)." };
        var command = new Command("demo", "Run the whole process offline on a small random-weight Qwen3 model.") { output, threads };
        command.SetAction(p => CommandRunner.Run(() => Run(p.GetRequiredValue(output), p.GetValue(threads))));
        return command;
    }

    private static int Run(DirectoryInfo output, int threads)
    {
        if (threads < 0) throw new InvalidInputException($"--threads must be at least 1, not {threads}");
        Console.Out.WriteLine("squeeze demo: the model is a Qwen3-shaped network with RANDOM weights, made here to show the whole");
        Console.Out.WriteLine("process offline (convert, perplexity, imatrix, statistics, quantize, KL divergence, tasks, speed, report).");
        Console.Out.WriteLine("Its scores are meaningless; the steps, files and formats are the real ones.");
        Console.Out.WriteLine();
        var folder = output.FullName;
        DemoCheckpoint.Write(Path.Combine(folder, "checkpoint"));
        DemoCheckpoint.WriteData(Path.Combine(folder, "data"));
        var pipeline = Path.Combine(folder, "pipeline.yaml");
        var yaml = Encoding.UTF8.GetBytes(DemoCheckpoint.PipelineYaml(threads));
        AtomicFile.Write(pipeline, s => s.Write(yaml));
        Console.Out.WriteLine($"wrote {Path.Combine(folder, "checkpoint")} and {pipeline}; running it (squeeze run {pipeline}):");
        var spec = PipelineSpec.Load(pipeline);
        return RunCommand.Execute(spec, spec.Resolve(spec.Output), dryRun: false);
    }
}
