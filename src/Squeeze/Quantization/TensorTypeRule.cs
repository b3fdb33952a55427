using System.Text.RegularExpressions;
using Squeeze.Quants;

namespace Squeeze.Quantization;

/// <summary>
/// A user rule, <c>--tensor-type PATTERN=TYPE</c>: tensors whose full name (after <c>--prune-layers</c> renumbering)
/// contains a match of the regular expression PATTERN get TYPE. Rules are tried in the order given and the first match
/// wins; a matched tensor skips the preset's rules (and is not counted by them) but still gets the row-size fallback,
/// as in llama.cpp at 815a2a591 (<c>llama_tensor_get_type</c>). Rules apply only when the file type's default type is
/// quantized (not for F32/F16/BF16/COPY), and not to tensors given <c>--output-tensor-type</c> or
/// <c>--token-embedding-type</c>.
/// </summary>
public sealed class TensorTypeRule
{
    /// <param name="pattern">The regular expression, used as written (ECMAScript syntax).</param>
    /// <param name="type">The type matched tensors get.</param>
    /// <exception cref="InvalidInputException">The pattern is not a valid regular expression, or the type cannot hold weights.</exception>
    public TensorTypeRule(string pattern, GgmlType type)
    {
        Pattern = pattern;
        Type = type;
        if (!IsWeightType(type)) throw new InvalidInputException($"--tensor-type {pattern}={type.Name()}: {type.Name()} is not a type weights are stored in");
        try
        {
            Regex = new Regex(pattern, RegexOptions.ECMAScript);
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException($"--tensor-type '{pattern}': not a valid regular expression ({e.Message})");
        }
    }

    /// <summary>The pattern as used (lower-cased when parsed from a command line).</summary>
    public string Pattern { get; }

    public GgmlType Type { get; }

    public Regex Regex { get; }

    /// <summary>Whether the rule matches <paramref name="tensorName"/> (a search, not a whole-name match).</summary>
    public bool Matches(string tensorName) => Regex.IsMatch(tensorName);

    /// <summary>
    /// Parses <c>PATTERN=TYPE</c> as llama-quantize does: split at the first <c>=</c>; PATTERN is lower-cased (ASCII, so
    /// <c>\D</c> becomes <c>\d</c> — llama-quantize does the same); TYPE is a ggml type name, any case.
    /// </summary>
    /// <exception cref="InvalidInputException">Malformed text, an unknown type or a bad pattern.</exception>
    public static TensorTypeRule Parse(string text)
    {
        int eq = text.IndexOf('=');
        if (eq < 0) throw new InvalidInputException($"--tensor-type '{text}': expected PATTERN=TYPE");
        if (eq == 0) throw new InvalidInputException($"--tensor-type '{text}': the tensor name pattern is missing");
        if (eq == text.Length - 1) throw new InvalidInputException($"--tensor-type '{text}': the type is missing");
        string pattern = AsciiLower(text[..eq]), typeName = text[(eq + 1)..];
        if (!GgmlTypes.TryParse(typeName, out var type))
            throw new InvalidInputException($"--tensor-type '{text}': '{typeName}' is not a ggml type");
        return new TensorTypeRule(pattern, type);
    }

    /// <summary>
    /// Reads a <c>--tensor-type-file</c>: <c>PATTERN=TYPE</c> tokens separated by any whitespace (spaces or newlines),
    /// in order.
    /// </summary>
    public static IReadOnlyList<TensorTypeRule> ParseFile(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"--tensor-type-file '{path}': {e.Message}");
        }
        return ParseText(text);
    }

    /// <summary>The rules in <paramref name="text"/> (whitespace-separated <c>PATTERN=TYPE</c> tokens).</summary>
    public static IReadOnlyList<TensorTypeRule> ParseText(string text) =>
        text.Split([' ', '\t', '\n', '\r', '\v', '\f'], StringSplitOptions.RemoveEmptyEntries).Select(Parse).ToList();

    /// <summary>Types a tensor can be stored in (not the dot-product-only Q8_1/Q8_K, not integers, not F64).</summary>
    public static bool IsWeightType(GgmlType t) =>
        t is not (GgmlType.Q8_1 or GgmlType.Q8_K or GgmlType.I8 or GgmlType.I16 or GgmlType.I32 or GgmlType.I64 or GgmlType.F64);

    private static string AsciiLower(string s) => string.Create(s.Length, s, (dst, src) =>
    {
        for (int i = 0; i < src.Length; i++) dst[i] = src[i] is >= 'A' and <= 'Z' ? (char)(src[i] + 32) : src[i];
    });

    public override string ToString() => $"{Pattern}={Type.Name()}";
}
