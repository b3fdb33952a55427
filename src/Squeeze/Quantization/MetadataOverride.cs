using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Squeeze.Gguf;

namespace Squeeze.Quantization;

/// <summary>The value kinds of <c>--override-kv</c>.</summary>
public enum MetadataOverrideKind
{
    Int,
    Float,
    Bool,
    Str,
}

/// <summary>
/// One <c>--override-kv KEY=TYPE:VALUE</c>: a metadata key set in the output (llama.cpp's <c>llama_model_kv_override</c>).
/// llama.cpp writes an int as <c>u32</c> (of its absolute value), a float as <c>f32</c>, a bool, a string; the key
/// moves to the end of the metadata, as every set key does.
/// </summary>
public sealed record MetadataOverride(string Key, MetadataOverrideKind Kind, long Int = 0, double Float = 0, bool Bool = false, string Str = "")
{
    /// <summary>Longest key llama.cpp takes (<c>char key[128]</c>).</summary>
    public const int MaxKeyBytes = 127;

    /// <summary>Longest string value llama.cpp takes (<c>char val_str[128]</c>).</summary>
    public const int MaxStringBytes = 127;

    private static readonly Regex FloatPrefix = new(@"^[ \t\n\v\f\r]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private static readonly Regex IntPrefix = new(@"^[ \t\n\v\f\r]*([+-]?[0-9]+)", RegexOptions.CultureInvariant);

    /// <summary>The value written to the output.</summary>
    public GgufValue Value => Kind switch
    {
        // llama-quantize stores integers as u32 of the absolute value (llama.cpp PR #14182).
        MetadataOverrideKind.Int => GgufValue.UInt32(unchecked((uint)Math.Abs(Int == long.MinValue ? 0 : Int))),
        MetadataOverrideKind.Float => GgufValue.Float32((float)Float),
        MetadataOverrideKind.Bool => GgufValue.Bool(Bool),
        _ => GgufValue.String(Str),
    };

    /// <summary>
    /// Parses <c>KEY=TYPE:VALUE</c> as llama.cpp's <c>string_parse_kv_override</c> does: TYPE is <c>int</c>, <c>float</c>,
    /// <c>bool</c> (<c>true</c>/<c>false</c>) or <c>str</c>; numbers are read like C's <c>atol</c>/<c>atof</c> (a
    /// leading number, 0 when there is none).
    /// </summary>
    /// <exception cref="InvalidInputException">The text is malformed.</exception>
    public static MetadataOverride Parse(string text)
    {
        int eq = text.IndexOf('=');
        if (eq <= 0 || Encoding.UTF8.GetByteCount(text.AsSpan(0, eq)) > MaxKeyBytes)
            throw new InvalidInputException($"--override-kv '{text}': expected KEY=TYPE:VALUE with a key of 1 to {MaxKeyBytes} bytes");
        string key = text[..eq], rest = text[(eq + 1)..];
        if (rest.StartsWith("int:", StringComparison.Ordinal))
        {
            var m = IntPrefix.Match(rest[4..]);
            long v = 0;
            if (m.Success && !long.TryParse(m.Groups[1].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v))
                throw new InvalidInputException($"--override-kv '{text}': the integer is out of range");
            return new(key, MetadataOverrideKind.Int, Int: v);
        }
        if (rest.StartsWith("float:", StringComparison.Ordinal))
        {
            var m = FloatPrefix.Match(rest[6..]);
            double v = m.Success ? double.Parse(m.Value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture) : 0;
            return new(key, MetadataOverrideKind.Float, Float: v);
        }
        if (rest.StartsWith("bool:", StringComparison.Ordinal))
        {
            return rest[5..] switch
            {
                "true" => new(key, MetadataOverrideKind.Bool, Bool: true),
                "false" => new(key, MetadataOverrideKind.Bool, Bool: false),
                _ => throw new InvalidInputException($"--override-kv '{text}': a bool is 'true' or 'false'"),
            };
        }
        if (rest.StartsWith("str:", StringComparison.Ordinal))
        {
            string s = rest[4..];
            if (Encoding.UTF8.GetByteCount(s) > MaxStringBytes)
                throw new InvalidInputException($"--override-kv '{text}': the string is longer than {MaxStringBytes} bytes");
            return new(key, MetadataOverrideKind.Str, Str: s);
        }
        throw new InvalidInputException($"--override-kv '{text}': the type must be int, float, bool or str (KEY=TYPE:VALUE)");
    }

    /// <summary>Refuses what gguf would abort on: <c>general.alignment</c> set to anything but a u32 power of two.</summary>
    public void Validate()
    {
        if (Key != GgufKeys.General.Alignment) return;
        if (Kind != MetadataOverrideKind.Int || Value.Value is not uint a || a == 0 || (a & (a - 1)) != 0)
            throw new InvalidInputException($"--override-kv {Key}: the alignment must be an integer power of two");
    }

    public override string ToString() => Kind switch
    {
        MetadataOverrideKind.Int => $"{Key}=int:{Int.ToString(CultureInfo.InvariantCulture)}",
        MetadataOverrideKind.Float => $"{Key}=float:{Float.ToString("R", CultureInfo.InvariantCulture)}",
        MetadataOverrideKind.Bool => $"{Key}=bool:{(Bool ? "true" : "false")}",
        _ => $"{Key}=str:{Str}",
    };
}
