namespace Squeeze;

/// <summary>
/// A user's input (a file, an argument, a setting) is not valid. The message is one self-contained line
/// that the command line prints as it is; every format's validation error derives from this.
/// </summary>
public class InvalidInputException : Exception
{
    public InvalidInputException(string message) : base(message) { }
    public InvalidInputException(string message, Exception inner) : base(message, inner) { }
}
