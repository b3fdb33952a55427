using Spectre.Console;
using Squeeze.Gguf;

namespace Squeeze.Cli;

/// <summary>Runs a command's body with the CLI's error contract: a user or file error prints one line and exits 1;
/// an internal error exits 2 with the detail.</summary>
internal static class CommandRunner
{
    public const int Ok = 0, UserError = 1, InternalError = 2;

    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsUserError(e))
        {
            Console.Error.WriteLine($"squeeze: {OneLine(e)}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("squeeze: cancelled");
            return UserError;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"squeeze: internal error: {e}");
            return InternalError;
        }
    }

    private static bool IsUserError(Exception e) => e is InvalidInputException or FileNotFoundException
        or DirectoryNotFoundException or UnauthorizedAccessException or PathTooLongException or IOException;

    private static string OneLine(Exception e) => e switch
    {
        FileNotFoundException f when f.FileName is not null => $"file not found: {f.FileName}",
        _ => e.Message.ReplaceLineEndings(" "),
    };

    /// <summary>Whether rich output (colour, live progress) suits stdout: a terminal, not a pipe or file.</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
}
