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
            InspectCommand.Create(),
            QuantizeCommand.Create(),
            TokenizeCommand.Create(),
            GenerateCommand.Create(),
            PerplexityCommand.Create(),
            BenchCommand.Create(),
            ReportCommand.Create(),
            ConvertCommand.Create(),
            DatasetCommand.Create(),
        };
        return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }
}
