namespace Squeeze.Tokenizers;

/// <summary>
/// UTF-8 the way llama.cpp's tokenizers read it (<c>unicode.cpp</c>): the sequence length comes from the lead
/// byte's high nibble alone; a malformed sequence becomes U+FFFD and consumes one byte; overlong forms and
/// encoded surrogates are accepted as they stand.
/// </summary>
internal static class Utf8Text
{
    /// <summary>llama.cpp's <c>unicode_len_utf8</c>: 1 for ASCII and continuation bytes, 2, 3 or 4 by the lead byte.</summary>
    public static int SequenceLength(byte lead) => (lead >> 4) switch
    {
        12 or 13 => 2,
        14 => 3,
        15 => 4,
        _ => 1,
    };

    /// <summary>Decodes <paramref name="utf8"/> to code points (llama.cpp's <c>unicode_cpts_from_utf8</c>).</summary>
    public static uint[] Decode(ReadOnlySpan<byte> utf8)
    {
        var result = new uint[utf8.Length];
        int n = 0, at = 0;
        while (at < utf8.Length)
            result[n++] = DecodeOne(utf8, ref at);
        return n == result.Length ? result : result[..n];
    }

    /// <summary>One code point at <paramref name="at"/>, advancing it; U+FFFD and one byte for a malformed sequence.</summary>
    public static uint DecodeOne(ReadOnlySpan<byte> s, ref int at)
    {
        byte b0 = s[at];
        if ((b0 & 0x80) == 0) { at += 1; return b0; }
        if ((b0 & 0x40) == 0) { at += 1; return 0xFFFD; }
        if ((b0 & 0x20) == 0)
        {
            if (at + 1 >= s.Length || !IsContinuation(s[at + 1])) { at += 1; return 0xFFFD; }
            uint c = ((uint)(b0 & 0x1F) << 6) | (uint)(s[at + 1] & 0x3F);
            at += 2;
            return c;
        }
        if ((b0 & 0x10) == 0)
        {
            if (at + 2 >= s.Length || !IsContinuation(s[at + 1]) || !IsContinuation(s[at + 2])) { at += 1; return 0xFFFD; }
            uint c = ((uint)(b0 & 0x0F) << 12) | ((uint)(s[at + 1] & 0x3F) << 6) | (uint)(s[at + 2] & 0x3F);
            at += 3;
            return c;
        }
        if ((b0 & 0x08) == 0)
        {
            if (at + 3 >= s.Length || !IsContinuation(s[at + 1]) || !IsContinuation(s[at + 2]) || !IsContinuation(s[at + 3]))
            { at += 1; return 0xFFFD; }
            uint c = ((uint)(b0 & 0x07) << 18) | ((uint)(s[at + 1] & 0x3F) << 12) | ((uint)(s[at + 2] & 0x3F) << 6) | (uint)(s[at + 3] & 0x3F);
            at += 4;
            return c;
        }
        at += 1;
        return 0xFFFD;
    }

    private static bool IsContinuation(byte b) => (b & 0xC0) == 0x80;

    /// <summary>Appends the UTF-8 bytes of <paramref name="cpt"/> (llama.cpp's <c>unicode_cpt_to_utf8</c>).</summary>
    /// <exception cref="InvalidInputException">The code point is beyond U+10FFFF (only malformed input yields one).</exception>
    public static void Append(uint cpt, List<byte> output)
    {
        Span<byte> buffer = stackalloc byte[4];
        int n = Encode(cpt, buffer);
        for (int i = 0; i < n; i++) output.Add(buffer[i]);
    }

    /// <summary>Writes the UTF-8 bytes of <paramref name="cpt"/> and returns how many.</summary>
    public static int Encode(uint cpt, Span<byte> dst)
    {
        if (cpt <= 0x7F) { dst[0] = (byte)cpt; return 1; }
        if (cpt <= 0x7FF)
        {
            dst[0] = (byte)(0xC0 | ((cpt >> 6) & 0x1F));
            dst[1] = (byte)(0x80 | (cpt & 0x3F));
            return 2;
        }
        if (cpt <= 0xFFFF)
        {
            dst[0] = (byte)(0xE0 | ((cpt >> 12) & 0x0F));
            dst[1] = (byte)(0x80 | ((cpt >> 6) & 0x3F));
            dst[2] = (byte)(0x80 | (cpt & 0x3F));
            return 3;
        }
        if (cpt <= 0x10FFFF)
        {
            dst[0] = (byte)(0xF0 | ((cpt >> 18) & 0x07));
            dst[1] = (byte)(0x80 | ((cpt >> 12) & 0x3F));
            dst[2] = (byte)(0x80 | ((cpt >> 6) & 0x3F));
            dst[3] = (byte)(0x80 | (cpt & 0x3F));
            return 4;
        }
        throw new InvalidInputException($"text holds a UTF-8 sequence for code point U+{cpt:X}, beyond U+10FFFF");
    }
}
