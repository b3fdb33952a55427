using System.Text;

namespace Squeeze.Tokenizers;

/// <summary>
/// A llama.cpp-exact tokenizer built from a GGUF vocabulary: SPM (<c>llama</c>), byte-level BPE (<c>gpt2</c>, with
/// the pre-tokenizer named by <c>tokenizer.ggml.pre</c>) and WordPiece (<c>bert</c>). <see cref="Encode(string, bool, bool)"/>
/// returns what <c>llama_tokenize</c> returns; <see cref="TokenToPiece"/> and <see cref="Detokenize"/> what
/// <c>llama_token_to_piece</c> and <c>llama_detokenize</c> return. Instances are immutable and thread-safe.
/// </summary>
public sealed partial class Tokenizer
{
    /// <summary>Tokenizes <paramref name="text"/> (as UTF-8).</summary>
    /// <param name="text">The text.</param>
    /// <param name="addSpecial">Add BOS/EOS (and SEP for WordPiece) as the vocabulary asks (<c>add_special</c>).</param>
    /// <param name="parseSpecial">Turn the text of control tokens into those tokens (<c>parse_special</c>); user-defined
    /// tokens are always recognised.</param>
    public int[] Encode(string text, bool addSpecial = true, bool parseSpecial = false) =>
        Encode(Encoding.UTF8.GetBytes(text ?? throw new ArgumentNullException(nameof(text))), addSpecial, parseSpecial);

    /// <summary>Tokenizes UTF-8 bytes (malformed sequences are read as llama.cpp reads them).</summary>
    public int[] Encode(ReadOnlySpan<byte> utf8, bool addSpecial = true, bool parseSpecial = false)
    {
        var output = new List<int>(utf8.Length / 3 + 4);
        var fragments = Partition(utf8, parseSpecial);
        switch (Type)
        {
            case VocabType.Spm:
            {
                if (addSpecial && AddBos) output.Add(RequireSpecial(Bos, "BOS"));
                bool prevSpecial = true;
                var session = new SpmSession(this);
                foreach (var f in fragments)
                {
                    if (f.Token != Null)
                    {
                        output.Add(f.Token);
                        prevSpecial = true;
                        continue;
                    }
                    var piece = utf8.Slice(f.Offset, f.Length);
                    var sb = new StringBuilder(piece.Length + 8);
                    if (AddSpacePrefix && prevSpecial) sb.Append(Escaped);
                    foreach (byte b in piece)
                        if (b == ' ') sb.Append(Escaped); else sb.Append((char)b);
                    session.Tokenize(sb.ToString(), output);
                    prevSpecial = false;
                }
                if (addSpecial && AddEos) output.Add(RequireSpecial(Eos, "EOS"));
                break;
            }
            case VocabType.Bpe:
            {
                if (addSpecial && AddBos) output.Add(RequireSpecial(Bos, "BOS"));
                var session = new BpeSession(this);
                foreach (var f in fragments)
                {
                    if (f.Token != Null) output.Add(f.Token);
                    else session.Tokenize(utf8.Slice(f.Offset, f.Length), output);
                }
                if (addSpecial && AddEos) output.Add(RequireSpecial(Eos, "EOS"));
                break;
            }
            case VocabType.Wpm:
            {
                if (addSpecial) output.Add(RequireSpecial(Bos, "BOS"));
                foreach (var f in fragments)
                {
                    if (f.Token != Null) output.Add(f.Token);
                    else WpmTokenize(utf8.Slice(f.Offset, f.Length), output);
                }
                if (addSpecial) output.Add(RequireSpecial(Separator, "SEP"));
                break;
            }
        }
        return output.ToArray();
    }

    /// <summary>U+2581 (the SentencePiece space) as a byte string.</summary>
    private const string Escaped = "\u00E2\u0096\u0081";

    private static int RequireSpecial(int id, string name) =>
        id != Null ? id : throw new InvalidInputException($"the vocabulary asks for a {name} token but has none");

    /// <summary>The token whose text is the byte string <paramref name="byteText"/>, or <see cref="Null"/>.</summary>
    internal int FindBytes(string byteText) => _ids.TryGetValue(byteText, out int id) ? id : Null;

    private readonly record struct Fragment(int Token, int Offset, int Length);

    /// <summary>
    /// llama.cpp's <c>tokenizer_st_partition</c>: for each special token, longest first, every text fragment is split
    /// at each occurrence (searching left to right). Control and unknown tokens take part only when
    /// <paramref name="parseSpecial"/>; LSTRIP/RSTRIP tokens swallow the whitespace beside them.
    /// llama.cpp searches the whole text once per special token; Squeeze finds every occurrence of every special
    /// token in one pass over the text (a byte trie), then applies them token by token in the same order, keeping
    /// an occurrence only where llama.cpp's search would find it: inside a fragment still raw, at or after the
    /// point the previous match of that token left off.
    /// </summary>
    private List<Fragment> Partition(ReadOnlySpan<byte> text, bool parseSpecial)
    {
        var fragments = new List<Fragment>();
        if (text.IsEmpty) return fragments;
        fragments.Add(new Fragment(Null, 0, text.Length));
        if (_specialTokens.Length == 0) return fragments;
        var occurrences = _specialTrie.Value.FindAll(text);
        if (occurrences.Count == 0) return fragments;
        var next = new List<Fragment>();
        foreach (int id in _specialTokens)
        {
            var attr = _attrs[id];
            if (!parseSpecial && (attr & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0) continue;
            if (!occurrences.TryGetValue(id, out var at)) continue;
            int needle = _texts[id].Length;
            next.Clear();
            int k = 0;
            foreach (var f in fragments)
            {
                if (f.Token != Null) { next.Add(f); continue; }
                int cur = f.Offset, end = f.Offset + f.Length;
                while (k < at.Count && at[k] < cur) k++;
                while (k < at.Count && at[k] + needle <= end)
                {
                    int match = at[k++];
                    if (match < cur) continue;
                    int leftLength = match - cur;
                    if ((attr & TokenAttributes.LStrip) != 0)
                        while (leftLength > 0 && IsCSpace(text[cur + leftLength - 1])) leftLength--;
                    if (leftLength > 0) next.Add(new Fragment(Null, cur, leftLength));
                    next.Add(new Fragment(id, match, 0));
                    cur = match + needle;
                    if ((attr & TokenAttributes.RStrip) != 0)
                        while (cur < end && IsCSpace(text[cur])) cur++;
                }
                if (end > cur) next.Add(new Fragment(Null, cur, end - cur));
            }
            (fragments, next) = (next, fragments);
        }
        return fragments;
    }

    private readonly Lazy<SpecialTrie> _specialTrie;

    /// <summary>A byte trie of the special tokens' texts.</summary>
    private sealed class SpecialTrie
    {
        private readonly Dictionary<long, int> _edges = new();
        private readonly List<int> _tokenAt = [Null];
        private readonly bool[] _first = new bool[256];

        public SpecialTrie(Tokenizer t)
        {
            foreach (int id in t._specialTokens)
            {
                string text = t._texts[id];
                int node = 0;
                foreach (char c in text)
                {
                    long key = ((long)node << 8) | (byte)c;
                    if (!_edges.TryGetValue(key, out int child))
                    {
                        child = _tokenAt.Count;
                        _tokenAt.Add(Null);
                        _edges.Add(key, child);
                    }
                    node = child;
                }
                _tokenAt[node] = id;
                _first[(byte)text[0]] = true;
            }
        }

        /// <summary>Every start offset of every special token in <paramref name="text"/>, ascending, by token.</summary>
        public Dictionary<int, List<int>> FindAll(ReadOnlySpan<byte> text)
        {
            var found = new Dictionary<int, List<int>>();
            for (int p = 0; p < text.Length; p++)
            {
                if (!_first[text[p]]) continue;
                int node = 0;
                for (int k = p; k < text.Length; k++)
                {
                    if (!_edges.TryGetValue(((long)node << 8) | text[k], out node)) break;
                    int id = _tokenAt[node];
                    if (id == Null) continue;
                    if (!found.TryGetValue(id, out var list)) found.Add(id, list = []);
                    list.Add(p);
                }
            }
            return found;
        }
    }

    /// <summary>C's <c>isspace</c> in the "C" locale.</summary>
    private static bool IsCSpace(byte b) => b == ' ' || (b >= '\t' && b <= '\r');

    private readonly Lazy<byte[][]> _tokenBytes;

    /// <summary>One SPM tokenization: symbols are UTF-8 characters; the adjacent pair whose concatenation is the
    /// highest-scoring token merges first (ties: leftmost); what never forms a token falls back to byte tokens.</summary>
    private sealed class SpmSession(Tokenizer t)
    {
        private int[] _start = [], _len = [], _prev = [], _next = [];
        private readonly BinaryHeap<SpmBigram, SpmBigram> _queue = new();

        public void Tokenize(string text, List<int> output)
        {
            int capacity = text.Length;
            if (_start.Length < capacity)
            {
                _start = new int[capacity]; _len = new int[capacity]; _prev = new int[capacity]; _next = new int[capacity];
            }
            int count = 0;
            for (int offs = 0; offs < text.Length;)
            {
                int n = Math.Min(Utf8Text.SequenceLength((byte)text[offs]), text.Length - offs);
                _start[count] = offs;
                _len[count] = n;
                offs += n;
                count++;
            }
            // Where no token holds the two characters on either side of a boundary, no merge can ever cross it, so
            // the pieces between such boundaries merge independently (and in the same order as in one queue).
            // Working piece by piece keeps the queue small on long texts.
            var pairs = t._spmPairs;
            int first = 0;
            for (int i = 0; i < count; i++)
            {
                if (i + 1 < count && (pairs is null || pairs.Contains(PairKey(text, _start[i], _len[i], _start[i + 1], _len[i + 1])))) continue;
                TokenizePiece(text, first, i + 1, output);
                first = i + 1;
            }
        }

        private void TokenizePiece(string text, int first, int end, List<int> output)
        {
            for (int i = first; i < end; i++)
            {
                _prev[i] = i == first ? -1 : i - 1;
                _next[i] = i + 1 == end ? -1 : i + 1;
            }
            _queue.Clear();
            for (int i = first + 1; i < end; i++) TryAddBigram(text, i - 1, i);
            while (_queue.TryPop(out var bigram))
            {
                int l = bigram.Left, r = bigram.Right;
                if (_len[l] == 0 || _len[r] == 0 || _len[l] + _len[r] != bigram.Size) continue;
                _len[l] += _len[r];
                _len[r] = 0;
                _next[l] = _next[r];
                if (_next[r] >= 0) _prev[_next[r]] = l;
                TryAddBigram(text, _prev[l], l);
                TryAddBigram(text, l, _next[l]);
            }
            for (int i = first; i != -1; i = _next[i])
            {
                var span = text.AsSpan(_start[i], _len[i]);
                int token = t.TextToToken(span);
                if (token != Null)
                {
                    output.Add(token);
                    continue;
                }
                // A merged symbol is always a token, so only single characters get here (llama.cpp's rev_merge
                // lookup cannot succeed for them): emit their bytes.
                foreach (char b in span) output.Add(t.SpmByteToken((byte)b));
            }
        }

        private void TryAddBigram(string text, int left, int right)
        {
            if (left == -1 || right == -1) return;
            int size = _len[left] + _len[right];
            int token = t.TextToToken(text.AsSpan(_start[left], size));
            if (token == Null) return;
            _queue.Push(new SpmBigram(t._scores[token], left, right, size));
        }
    }

    /// <summary>A candidate SPM merge. Highest score first; equal scores leftmost first (llama.cpp's
    /// <c>llm_bigram_spm::comparator</c>).</summary>
    private readonly record struct SpmBigram(float Score, int Left, int Right, int Size) : IHeapOrder<SpmBigram>
    {
        public static bool Before(in SpmBigram a, in SpmBigram b) => a.Score > b.Score || (a.Score == b.Score && a.Left < b.Left);
    }

    private int[]? _spmBytes;

    /// <summary>The adjacent character pairs inside SPM tokens (see <see cref="SpmSession"/>); null when some token
    /// ends in a cut UTF-8 sequence, where the argument for splitting does not hold.</summary>
    private HashSet<ulong>? _spmPairs;

    private static ulong PairKey(ReadOnlySpan<char> s, int a, int aLength, int b, int bLength) =>
        ((ulong)Pack(s.Slice(a, aLength)) << 32) | Pack(s.Slice(b, bLength));

    private static uint Pack(ReadOnlySpan<char> ch)
    {
        uint v = 0;
        for (int i = ch.Length - 1; i >= 0; i--) v = (v << 8) | (byte)ch[i];
        return v;
    }

    private HashSet<ulong>? BuildSpmPairs()
    {
        var pairs = new HashSet<ulong>();
        foreach (string text in _texts)
        {
            int prevStart = -1, prevLength = 0;
            for (int at = 0; at < text.Length;)
            {
                int n = Utf8Text.SequenceLength((byte)text[at]);
                if (at + n > text.Length) return null;
                if (prevStart >= 0) pairs.Add(PairKey(text, prevStart, prevLength, at, n));
                prevStart = at;
                prevLength = n;
                at += n;
            }
        }
        return pairs;
    }

    /// <summary>llama.cpp's <c>byte_to_token</c> for SPM: <c>&lt;0xXX&gt;</c>, else the byte itself as a token.</summary>
    private int SpmByteToken(byte b)
    {
        var table = _spmBytes ??= BuildSpmBytes();
        return table[b] != Null ? table[b]
            : throw new InvalidInputException($"the vocabulary has no token for byte 0x{b:X2} (neither <0x{b:X2}> nor the byte itself)");
    }

    private int[] BuildSpmBytes()
    {
        var table = new int[256];
        for (int b = 0; b < 256; b++)
        {
            int id = FindBytes($"<0x{b:X2}>");
            table[b] = id != Null ? id : FindBytes(((char)b).ToString());
        }
        return table;
    }

    /// <summary>One byte-level BPE tokenization: pre-tokenize into words, then within each word merge the adjacent
    /// pair of lowest rank first (ties: leftmost) until no pair has a rank.</summary>
    private sealed class BpeSession(Tokenizer t)
    {
        private readonly BpeMerges _m = t._merges!;
        private int[] _start = [], _len = [], _prev = [], _next = [], _id = [];
        private readonly BinaryHeap<BpeBigram, BpeBigram> _queue = new();
        private readonly List<byte> _bytes = [];

        public void Tokenize(ReadOnlySpan<byte> text, List<int> output)
        {
            var cpts = Utf8Text.Decode(text);
            var pieces = t._preTokenizer!.Split(cpts);
            // Words are re-encoded from code points (a malformed byte becomes U+FFFD's three bytes, as in llama.cpp).
            _bytes.Clear();
            var cptEnd = new int[cpts.Length + 1];
            for (int i = 0; i < cpts.Length; i++)
            {
                Utf8Text.Append(cpts[i], _bytes);
                cptEnd[i + 1] = _bytes.Count;
            }
            var bytes = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_bytes);
            int c = 0;
            foreach (int length in pieces)
            {
                var word = bytes[cptEnd[c]..cptEnd[c + length]];
                c += length;
                TokenizeWord(word, output);
            }
        }

        private void TokenizeWord(ReadOnlySpan<byte> word, List<int> output)
        {
            if (t.IgnoreMerges)
            {
                int whole = t.TextToToken(EncodedText(word));
                if (whole != Null)
                {
                    output.Add(whole);
                    return;
                }
            }
            int n = word.Length;
            if (n == 1 && _m.TokenOf(_m.ByteSymbol[word[0]]) is int single and >= 0)
            {
                output.Add(single);
                return;
            }
            if (_start.Length < n)
            {
                _start = new int[n]; _len = new int[n]; _prev = new int[n]; _next = new int[n]; _id = new int[n];
            }
            for (int i = 0; i < n; i++)
            {
                _start[i] = i;
                _len[i] = 1;
                _prev[i] = i - 1;
                _next[i] = i + 1 == n ? -1 : i + 1;
                _id[i] = _m.ByteSymbol[word[i]];
            }
            _queue.Clear();
            for (int i = 1; i < n; i++) AddBigram(i - 1, i);
            while (_queue.TryPop(out var bigram))
            {
                int l = bigram.Left, r = bigram.Right;
                if (_len[l] == 0 || _len[r] == 0 || _len[l] + _len[r] != bigram.Size) continue;
                _len[l] += _len[r];
                _len[r] = 0;
                _id[l] = bigram.Merged;
                _next[l] = _next[r];
                if (_next[r] >= 0) _prev[_next[r]] = l;
                AddBigram(_prev[l], l);
                AddBigram(l, _next[l]);
            }
            for (int i = 0; i != -1 && n > 0; i = _next[i])
            {
                int token = _m.TokenOf(_id[i]);
                if (token != Null)
                {
                    output.Add(token);
                    continue;
                }
                // No such token: llama.cpp looks up each byte of the symbol's (encoded) text as a one-byte token.
                for (int k = _start[i]; k < _start[i] + _len[i]; k++)
                    foreach (byte e in _m.EncodedBytes[word[k]])
                        if (_m.SingleByteToken[e] != Null) output.Add(_m.SingleByteToken[e]);
            }
        }

        private void AddBigram(int left, int right)
        {
            if (left == -1 || right == -1) return;
            int a = _id[left], b = _id[right];
            if (a < 0 || b < 0 || !_m.TryGet(a, b, out int rank, out int merged)) return;
            _queue.Push(new BpeBigram(rank, left, right, _len[left] + _len[right], merged));
        }

        private string EncodedText(ReadOnlySpan<byte> word)
        {
            var sb = new StringBuilder(word.Length * 2);
            foreach (byte b in word)
                foreach (byte e in _m.EncodedBytes[b]) sb.Append((char)e);
            return sb.ToString();
        }
    }

    /// <summary>A candidate BPE merge. Lowest rank first; equal ranks leftmost first (llama.cpp's
    /// <c>llm_bigram_bpe::comparator</c>).</summary>
    private readonly record struct BpeBigram(int Rank, int Left, int Right, int Size, int Merged) : IHeapOrder<BpeBigram>
    {
        public static bool Before(in BpeBigram a, in BpeBigram b) => a.Rank < b.Rank || (a.Rank == b.Rank && a.Left < b.Left);
    }

    /// <summary>llama.cpp's WordPiece: split into words at whitespace and around punctuation and CJK characters
    /// (lowercased and accent-stripped when the vocabulary says so), then take the longest token at each position
    /// of "▁" + word; a word with an untokenizable rest becomes the unknown token.</summary>
    private void WpmTokenize(ReadOnlySpan<byte> text, List<int> output)
    {
        var cpts = Utf8Text.Decode(text);
        var words = new List<List<byte>> { new() };
        foreach (uint raw in cpts)
        {
            uint cpt = StripAccents ? UnicodeData.NfdFirst(raw) : raw;
            var flags = UnicodeData.Flags(cpt);
            if ((flags & CodepointFlags.Whitespace) != 0)
            {
                if (words[^1].Count > 0) words.Add([]);
                continue;
            }
            if (cpt == 0 || cpt == 0xFFFD || (flags & CodepointFlags.Control) != 0) continue;
            if (StripAccents && (flags & CodepointFlags.AccentMark) != 0) continue;
            uint mapped = Lowercase ? UnicodeData.ToLower(cpt) : cpt;
            if ((flags & CodepointFlags.Punctuation) != 0 || (cpt < 0x7F && (flags & CodepointFlags.Symbol) != 0) || IsChineseChar(cpt))
            {
                if (words[^1].Count > 0) words.Add([]);
                Utf8Text.Append(mapped, words[^1]);
                words.Add([]);
            }
            else Utf8Text.Append(mapped, words[^1]);
        }
        foreach (var word in words)
        {
            if (word.Count == 0) continue;
            var sb = new StringBuilder(word.Count + 3);
            sb.Append(Escaped);
            foreach (byte b in word) sb.Append((char)b);
            string w = sb.ToString();
            int n = w.Length, before = output.Count;
            for (int i = 0; i < n; i++)
            {
                bool match = false;
                for (int j = Math.Min(n, i + MaxTokenLength + 1); j > i; j--)
                {
                    int id = TextToToken(w.AsSpan(i, j - i));
                    if (id == Null) continue;
                    output.Add(id);
                    match = true;
                    i = j - 1;
                    break;
                }
                if (!match)
                {
                    output.RemoveRange(before, output.Count - before);
                    break;
                }
            }
            if (output.Count == before) output.Add(Unknown);
        }
    }

    private static bool IsChineseChar(uint c) =>
        (c >= 0x04E00 && c <= 0x09FFF) || (c >= 0x03400 && c <= 0x04DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
        (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
        (c >= 0x2B920 && c <= 0x2CEAF) || // llama.cpp follows HF here (0x2B920, not 0x2B820)
        (c >= 0x0F900 && c <= 0x0FAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
