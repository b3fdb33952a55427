namespace Squeeze.Evaluation.Tasks;

/// <summary>
/// A task file (HellaSwag text, WinoGrande CSV, multiple-choice binary) or a dataset being converted is not valid:
/// the message names the file, where in it (line or byte offset), what was expected and what was found.
/// </summary>
public sealed class TaskFileException : InvalidInputException
{
    public TaskFileException(string source, string location, string problem)
        : base($"{source}: {location}: {problem}")
    {
        SourceName = source;
        Location = location;
        Problem = problem;
    }

    /// <summary>The file (or a name for in-memory data).</summary>
    public string SourceName { get; }

    /// <summary>Where: "line 7", "byte 1234", "task 3", ...</summary>
    public string Location { get; }

    /// <summary>What is wrong, without the file and location.</summary>
    public string Problem { get; }
}
