namespace Squeeze.Tokenizers;

/// <summary>
/// Token text (a byte string) to id, by open addressing with a cheap deterministic hash: SPM looks up every
/// adjacent pair of a text, so lookups of short spans must be fast.
/// </summary>
internal sealed class TokenTable
{
    private readonly string[] _texts;
    private readonly int[] _slots; // token id + 1, 0 = empty
    private readonly int _mask;

    public TokenTable(string[] texts)
    {
        _texts = texts;
        int size = 1;
        while (size < texts.Length * 2) size <<= 1;
        _slots = new int[size];
        _mask = size - 1;
        for (int id = 0; id < texts.Length; id++)
        {
            int slot = Hash(texts[id]) & _mask;
            while (_slots[slot] != 0) slot = (slot + 1) & _mask;
            _slots[slot] = id + 1;
        }
    }

    /// <summary>The id of the token whose text is <paramref name="text"/>, or -1.</summary>
    public int Find(ReadOnlySpan<char> text)
    {
        int slot = Hash(text) & _mask;
        while (true)
        {
            int entry = _slots[slot];
            if (entry == 0) return -1;
            if (text.SequenceEqual(_texts[entry - 1])) return entry - 1;
            slot = (slot + 1) & _mask;
        }
    }

    private static int Hash(ReadOnlySpan<char> s)
    {
        ulong h = 0xcbf29ce484222325UL ^ (ulong)s.Length;
        foreach (char c in s) h = (h ^ c) * 0x100000001b3UL;
        return (int)((h ^ (h >> 29)) * 0x9E3779B97F4A7C15UL >> 32);
    }
}
