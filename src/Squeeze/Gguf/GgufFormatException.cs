namespace Squeeze.Gguf;

/// <summary>
/// A GGUF file is not valid: says where (byte offset), which field, what was expected and what was found.
/// The only exception the reader throws for bad bytes.
/// </summary>
public sealed class GgufFormatException : InvalidInputException
{
    public GgufFormatException(long offset, string field, string expected, string found)
        : base($"invalid GGUF at offset {offset}: {field}: expected {expected}, found {found}")
    {
        Offset = offset;
        Field = field;
        Expected = expected;
        Found = found;
    }

    /// <summary>Byte offset in the file where the bad field starts.</summary>
    public long Offset { get; }

    /// <summary>The field, e.g. <c>header.version</c> or <c>tensor 'blk.0.attn_q.weight'.offset</c>.</summary>
    public string Field { get; }

    public string Expected { get; }
    public string Found { get; }
}
