namespace Squeeze.Tokenizers;

/// <summary>
/// Code point properties as llama.cpp's <c>unicode_cpt_flags</c> defines them: one general-category bit (the
/// regex classes \p{N}, \p{L}, \p{Z}, \p{M}, \p{P}, \p{S}, \p{C}, or "undefined") plus helper bits.
/// </summary>
[Flags]
public enum CodepointFlags : ushort
{
    None = 0,
    Undefined = 0x0001,
    Number = 0x0002,
    Letter = 0x0004,
    Separator = 0x0008,
    AccentMark = 0x0010,
    Punctuation = 0x0020,
    Symbol = 0x0040,
    Control = 0x0080,
    /// <summary>The general-category bits above.</summary>
    Categories = 0x00FF,
    Whitespace = 0x0100,
    Lowercase = 0x0200,
    Uppercase = 0x0400,
    Nfd = 0x0800,
}

/// <summary>
/// llama.cpp's Unicode tables (<c>src/unicode-data.cpp</c>): category flags per code point, the whitespace set,
/// the lowercase map and the NFD ranges. Squeeze carries the tables rather than asking .NET so that its
/// tokenizers split text exactly where llama.cpp does, independent of the runtime's Unicode version.
/// </summary>
internal static partial class UnicodeData
{
    public const uint MaxCodepoints = 0x110000;

    private static readonly Lazy<ushort[]> Table = new(BuildTable);

    /// <summary>The flags of <paramref name="cpt"/>; code points beyond U+10FFFF are <see cref="CodepointFlags.Undefined"/>.</summary>
    public static CodepointFlags Flags(uint cpt) =>
        cpt < MaxCodepoints ? (CodepointFlags)Table.Value[cpt] : CodepointFlags.Undefined;

    /// <summary>The whole table (index = code point), for loops that classify many code points.</summary>
    public static ushort[] FlagTable => Table.Value;

    /// <summary>llama.cpp's <c>unicode_tolower</c>: the mapped code point, or <paramref name="cpt"/> when it has none.</summary>
    public static uint ToLower(uint cpt)
    {
        int lo = 0, hi = LowercasePairs.Length / 2 - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            uint key = LowercasePairs[2 * mid];
            if (key == cpt) return LowercasePairs[2 * mid + 1];
            if (key < cpt) lo = mid + 1; else hi = mid - 1;
        }
        return cpt;
    }

    /// <summary>llama.cpp's <c>unicode_cpts_normalize_nfd</c> for one code point: the first code point of its
    /// canonical decomposition when it lies in a decomposition range (llama.cpp keeps only that one).</summary>
    public static uint NfdFirst(uint cpt)
    {
        // upper_bound on range.first, then step back one range.
        int lo = 0, hi = NfdTriples.Length / 3;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (cpt < NfdTriples[3 * mid]) hi = mid; else lo = mid + 1;
        }
        int at = lo - 1;
        if (at < 0) return cpt; // llama.cpp would read before the table; the first range starts at U+00C0
        return NfdTriples[3 * at] <= cpt && cpt <= NfdTriples[3 * at + 1] ? NfdTriples[3 * at + 2] : cpt;
    }

    private static ushort[] BuildTable()
    {
        var flags = new ushort[MaxCodepoints];
        for (int i = 0; i + 1 < RangeStarts.Length; i++)
            flags.AsSpan((int)RangeStarts[i], (int)(RangeStarts[i + 1] - RangeStarts[i])).Fill(RangeFlags[i]);
        foreach (var cpt in Whitespace) flags[cpt] |= (ushort)CodepointFlags.Whitespace;
        for (int i = 0; i < LowercasePairs.Length; i += 2) flags[LowercasePairs[i + 1]] |= (ushort)CodepointFlags.Lowercase;
        for (int i = 0; i < UppercasePairsTargets.Length; i++) flags[UppercasePairsTargets[i]] |= (ushort)CodepointFlags.Uppercase;
        for (int i = 0; i < NfdTriples.Length; i += 3) flags[NfdTriples[i + 2]] |= (ushort)CodepointFlags.Nfd;
        return flags;
    }
}
