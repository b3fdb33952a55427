using System.IO.Compression;
using System.Text;

namespace Squeeze.Evaluation.Tasks;

/// <summary>Reading task and dataset files: gzip by magic, strict UTF-8, and lines split the way llama.cpp splits them.</summary>
internal static class TaskText
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The bytes of <paramref name="path"/>, decompressed when they start with gzip's magic.</summary>
    public static byte[] ReadBytes(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b)
        {
            try
            {
                using var gz = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
                using var output = new MemoryStream();
                gz.CopyTo(output);
                return output.ToArray();
            }
            catch (InvalidDataException e)
            {
                throw new TaskFileException(path, "gzip stream", $"cannot be decompressed ({e.Message})");
            }
        }
        return bytes;
    }

    /// <summary>UTF-8 text (a leading byte-order mark dropped); invalid UTF-8 is an error naming the byte offset.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes, string source)
    {
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new TaskFileException(source, $"byte {e.Index}", "the text is not valid UTF-8");
        }
    }

    public static string ReadText(string path) => Decode(ReadBytes(path), path);

    /// <summary>Lines split at '\n' with one trailing '\r' dropped from each; a final newline ends the last line, it does not start an empty one.</summary>
    public static List<string> Lines(string text)
    {
        var lines = new List<string>();
        if (text.Length == 0) return lines;
        int start = 0;
        while (start <= text.Length)
        {
            int nl = text.IndexOf('\n', start);
            if (nl < 0)
            {
                if (start < text.Length) lines.Add(TrimCr(text[start..]));
                break;
            }
            lines.Add(TrimCr(text[start..nl]));
            start = nl + 1;
        }
        return lines;
    }

    /// <summary>The text as llama.cpp's <c>-f</c> option reads a file: one trailing '\n' removed.</summary>
    public static string AsPrompt(string text) => text.EndsWith('\n') ? text[..^1] : text;

    private static string TrimCr(string line) => line.EndsWith('\r') ? line[..^1] : line;
}
