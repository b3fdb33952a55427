namespace Squeeze.Conversion;

/// <summary>
/// A safetensors file or checkpoint folder is not valid: says which file, where (byte offset), which field, what was
/// expected and what was found. The only exception the safetensors reader throws for bad bytes.
/// </summary>
public sealed class SafetensorsFormatException : InvalidInputException
{
    public SafetensorsFormatException(string file, long offset, string field, string expected, string found)
        : base($"invalid safetensors {Path.GetFileName(file)} at offset {offset}: {field}: expected {expected}, found {found}")
    {
        File = file;
        Offset = offset;
        Field = field;
        Expected = expected;
        Found = found;
    }

    /// <summary>The file (a shard, or the index) the error is in.</summary>
    public string File { get; }

    /// <summary>Byte offset in the file where the bad field starts (0 when the whole file is at fault).</summary>
    public long Offset { get; }

    /// <summary>The field, e.g. <c>header length</c> or <c>tensor 'model.norm.weight'.data_offsets</c>.</summary>
    public string Field { get; }

    public string Expected { get; }
    public string Found { get; }
}
