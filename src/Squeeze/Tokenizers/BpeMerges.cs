using System.Text;

namespace Squeeze.Tokenizers;

/// <summary>
/// The merge table of a byte-level BPE vocabulary. Every string a merge mentions (its two parts and their
/// concatenation) gets an integer id: a token's id when the string is a token, a fresh id above the vocabulary
/// otherwise. Merging then works on ids: a pair of adjacent symbols merges when (left id, right id) has a rank,
/// exactly when llama.cpp's <c>find_bpe_rank(left text, right text)</c> finds one.
/// </summary>
internal sealed class BpeMerges
{
    private readonly Dictionary<long, long> _pairs; // (left << 32 | right) -> (rank << 32 | merged id)
    private readonly Dictionary<string, int> _extra = new(StringComparer.Ordinal);
    private readonly int _tokenCount;

    public BpeMerges(Tokenizer owner, string[] merges)
    {
        _tokenCount = owner.VocabSize;
        _pairs = new Dictionary<long, long>(merges.Length, PairComparer.Instance);
        for (int rank = 0; rank < merges.Length; rank++)
        {
            string m = ByteString.FromUtf16(merges[rank]);
            // llama.cpp splits at the first space after the first byte; a merge without one never applies.
            int space = m.Length > 1 ? m.IndexOf(' ', 1) : -1;
            if (space < 0) continue;
            string first = m[..space], second = m[(space + 1)..];
            if (first.Length == 0 || second.Length == 0) continue;
            int a = Intern(owner, first), b = Intern(owner, second);
            int merged = Intern(owner, first + second);
            _pairs.TryAdd(((long)a << 32) | (uint)b, ((long)rank << 32) | (uint)merged);
        }

        ByteSymbol = new int[256];
        EncodedBytes = new byte[256][];
        for (int b = 0; b < 256; b++)
        {
            EncodedBytes[b] = Encoding.UTF8.GetBytes(char.ConvertFromUtf32((int)ByteLevel.ByteToCodepoint[b]));
            ByteSymbol[b] = Lookup(owner, ByteString.FromBytes(EncodedBytes[b]));
        }
        SingleByteToken = new int[256];
        for (int b = 0; b < 256; b++) SingleByteToken[b] = owner.FindBytes(ByteString.FromBytes([(byte)b]));
    }

    /// <summary>The symbol id of the one-character string that stands for each byte, or -1 when neither a token
    /// nor any merge uses it.</summary>
    public int[] ByteSymbol { get; }

    /// <summary>The UTF-8 bytes of the code point that stands for each byte.</summary>
    public byte[][] EncodedBytes { get; }

    /// <summary>The token whose text is this single byte, or -1 (llama.cpp's last resort for an unknown symbol).</summary>
    public int[] SingleByteToken { get; }

    /// <summary>The token a symbol id names, or -1 when the id is a merge string that is no token.</summary>
    public int TokenOf(int symbol) => symbol >= 0 && symbol < _tokenCount ? symbol : -1;

    /// <summary>The rank and merged symbol of the pair, or false.</summary>
    public bool TryGet(int left, int right, out int rank, out int merged)
    {
        if (_pairs.TryGetValue(((long)left << 32) | (uint)right, out long v))
        {
            rank = (int)(v >> 32);
            merged = (int)v;
            return true;
        }
        rank = merged = 0;
        return false;
    }

    private int Lookup(Tokenizer owner, string s)
    {
        int id = owner.FindBytes(s);
        if (id >= 0) return id;
        return _extra.TryGetValue(s, out id) ? id : -1;
    }

    private int Intern(Tokenizer owner, string s)
    {
        int id = Lookup(owner, s);
        if (id >= 0) return id;
        id = _tokenCount + _extra.Count;
        _extra.Add(s, id);
        return id;
    }

    /// <summary>Hashes a (left, right) pair well: <see cref="long"/>'s own hash is left XOR right, which piles the
    /// merges of the many small ids into few buckets.</summary>
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
    }
}
