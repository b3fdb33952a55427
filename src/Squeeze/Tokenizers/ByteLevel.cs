namespace Squeeze.Tokenizers;

/// <summary>
/// GPT-2's reversible map from bytes to printable code points (<c>bytes_to_unicode</c>): the printable Latin-1
/// bytes map to themselves, the other 68 to U+0100 onwards in byte order. Byte-level BPE vocabularies spell
/// every token in these code points.
/// </summary>
internal static class ByteLevel
{
    /// <summary>The code point that stands for each byte.</summary>
    public static readonly uint[] ByteToCodepoint = Build();

    /// <summary>The byte each code point below 0x144 stands for, or -1.</summary>
    public static readonly int[] CodepointToByte = Invert();

    private static uint[] Build()
    {
        var map = new uint[256];
        var printable = new bool[256];
        for (int b = 0x21; b <= 0x7E; b++) printable[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) printable[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) printable[b] = true;
        uint next = 256;
        for (int b = 0; b < 256; b++) map[b] = printable[b] ? (uint)b : next++;
        return map;
    }

    private static int[] Invert()
    {
        var inverse = new int[0x144];
        Array.Fill(inverse, -1);
        for (int b = 0; b < 256; b++) inverse[ByteToCodepoint[b]] = b;
        return inverse;
    }
}
