namespace Squeeze.Imatrix;

/// <summary>
/// An imatrix file (legacy <c>.dat</c> or GGUF) is not valid: says where (byte offset), which field, what was
/// expected and what was found. The only exception the imatrix readers throw for bad bytes; a broken GGUF container
/// is reported through this type too, with the container's error as the inner exception.
/// </summary>
public sealed class ImatrixFormatException : InvalidInputException
{
    public ImatrixFormatException(long offset, string field, string expected, string found, Exception? inner = null)
        : base($"invalid imatrix{(offset >= 0 ? $" at offset {offset}" : "")}: {field}: expected {expected}, found {found}", inner!)
    {
        Offset = offset;
        Field = field;
        Expected = expected;
        Found = found;
    }

    /// <summary>Byte offset in the file where the bad field starts (-1 when the problem has no single place).</summary>
    public long Offset { get; }

    /// <summary>The field, e.g. <c>entry[3].nval</c> or <c>tensor 'blk.0.attn_q.weight.counts'.type</c>.</summary>
    public string Field { get; }

    public string Expected { get; }
    public string Found { get; }
}
