using System.CommandLine;
using Squeeze.Cli.Commands;

namespace Squeeze.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args);

    /// <summary>Parses and runs a command line (also used by tests).</summary>
    public static int Run(string[] args)
    {
        var root = new RootCommand("Squeeze: layer-wise quantization of large language models in GGUF format.")
        {
            ConvertCommand.Create(),
            InspectCommand.Create(),
            TokenizeCommand.Create(),
            GenerateCommand.Create(),
            ImatrixCommand.Create(),
            StatsCommand.Create(),
            QuantizeCommand.Create(),
            PlanCommand.Create(),
            PerplexityCommand.Create(),
            BenchCommand.Create(),
            ReportCommand.Create(),
            DatasetCommand.Create(),
            RunCommand.Create(),
            DemoCommand.Create(),
        };
        return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }
}
