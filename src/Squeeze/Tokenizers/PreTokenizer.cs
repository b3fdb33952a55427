namespace Squeeze.Tokenizers;

/// <summary>
/// The splitting rule a byte-level BPE vocabulary names in <c>tokenizer.ggml.pre</c>, grouped as llama.cpp groups
/// them (<c>llama_vocab_pre_type</c>): names in one group share one list of split expressions.
/// </summary>
public enum PreTokenizerKind
{
    /// <summary>llama.cpp's default: punctuation runs, the GPT-2 expression, digit runs, three-digit groups.</summary>
    Default,
    /// <summary>The Llama 3 expression (letters with one leading non-letter, digits in threes, ...).</summary>
    Llama3,
    /// <summary>DeepSeek LLM: newlines, Latin-like letter runs, ASCII/full-width punctuation, trailing spaces, CJK, digits.</summary>
    DeepseekLlm,
    /// <summary>DeepSeek Coder: newlines, letter runs, punctuation runs, CJK, single digits.</summary>
    DeepseekCoder,
    /// <summary>Falcon: punctuation runs, the GPT-2 expression, three-digit groups.</summary>
    Falcon,
    /// <summary>StarCoder, Refact, Command-R and kin: single digits, then the GPT-2 expression.</summary>
    Starcoder,
    /// <summary>GPT-2, MPT, OLMo and kin: the GPT-2 expression alone.</summary>
    Gpt2,
    /// <summary>Qwen2 and kin: the Llama 3 expression with single digits.</summary>
    Qwen2,
}

/// <summary>
/// Splits text into the words that byte-level BPE merges within, reproducing llama.cpp's
/// <c>unicode_regex_split</c>: each expression of the list splits every piece the previous one left, and the text
/// between two matches is a piece of its own. llama.cpp runs the GPT-2, Llama 3 and Qwen2 expressions as
/// hand-written scanners and the others through <c>std::regex</c> over a "collapsed" text (one byte per code point:
/// ASCII as is, other whitespace as <c>\v</c>, other code points as a byte naming their category); Squeeze scans
/// for the same matches directly, over the same collapsed classes, so the pieces are the same by construction.
/// </summary>
internal sealed class PreTokenizer
{
    private readonly ISplitter[] _splitters;

    private PreTokenizer(PreTokenizerKind kind, params ISplitter[] splitters)
    {
        Kind = kind;
        _splitters = splitters;
    }

    public PreTokenizerKind Kind { get; }

    public static PreTokenizer For(PreTokenizerKind kind) => kind switch
    {
        PreTokenizerKind.Default => new(kind,
            new RunSplitter(Collapsed.Punctuation.With("$+<=>^~|")),
            new Gpt2Splitter(),
            new RunSplitter(Collapsed.Number),
            new ThreeDigitSplitter()),
        PreTokenizerKind.Llama3 => new(kind, new Llama3Splitter(digitsPerGroup: 3)),
        PreTokenizerKind.Qwen2 => new(kind, new Llama3Splitter(digitsPerGroup: 1)),
        PreTokenizerKind.DeepseekLlm => new(kind,
            new SingleSplitter(Wide.Of("\r\n")),
            new SpaceThenRunSplitter(Wide.Of(DeepseekLetters)),
            new SpaceThenRunSplitter(Wide.Of(DeepseekPunctuation)),
            new TrailingSpaceSplitter(),
            new RunSplitter(Wide.Of(CjkRanges)),
            new RunSplitter(Collapsed.Number)),
        PreTokenizerKind.DeepseekCoder => new(kind,
            new SingleSplitter(Wide.Of("\r\n")),
            new SpaceThenRunSplitter(Collapsed.Letter),
            new SpaceThenRunSplitter(Collapsed.Punctuation),
            new RunSplitter(Wide.Of(CjkRanges)),
            new SingleSplitter(Collapsed.Number)),
        PreTokenizerKind.Falcon => new(kind,
            new RunSplitter(Collapsed.Punctuation.With("$+<=>^~|`")),
            new Gpt2Splitter(),
            new ThreeDigitSplitter()),
        PreTokenizerKind.Starcoder => new(kind, new SingleSplitter(Collapsed.Number), new Gpt2Splitter()),
        PreTokenizerKind.Gpt2 => new(kind, new Gpt2Splitter()),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    // The bracket expressions of llama.cpp's DeepSeek LLM and CJK patterns (llama-vocab.cpp), as ranges.
    private const string DeepseekLetters =
        "A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943";
    private const string DeepseekPunctuation = "!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002";
    private const string CjkRanges = "\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF";

    /// <summary>The pieces of <paramref name="cpts"/> as lengths in code points, in order, covering all of it.</summary>
    public List<int> Split(uint[] cpts)
    {
        var text = new SplitText(cpts);
        var pieces = new List<int>(cpts.Length / 4 + 1) { cpts.Length };
        if (cpts.Length == 0) return [];
        foreach (var splitter in _splitters)
        {
            var next = new List<int>(pieces.Count * 2);
            int start = 0;
            foreach (int length in pieces)
            {
                splitter.Split(text, start, start + length, next);
                start += length;
            }
            pieces = next;
        }
        return pieces;
    }

    /// <summary>The code points with their flags and the two mapped forms llama.cpp's regex fallback sees.</summary>
    internal sealed class SplitText
    {
        public SplitText(uint[] cpts)
        {
            Cpts = cpts;
            var table = UnicodeData.FlagTable;
            Flags = new CodepointFlags[cpts.Length];
            for (int i = 0; i < cpts.Length; i++)
                Flags[i] = cpts[i] < UnicodeData.MaxCodepoints ? (CodepointFlags)table[cpts[i]] : CodepointFlags.Undefined;
        }

        public uint[] Cpts { get; }
        public CodepointFlags[] Flags { get; }

        /// <summary><c>std::regex</c>'s <c>\s</c> on llama.cpp's mapped text: ASCII space, tab, LF, VT, FF, CR, and
        /// every non-ASCII code point llama.cpp counts as whitespace (it maps them to VT first).</summary>
        public bool IsRegexSpace(int i)
        {
            uint c = Cpts[i];
            return c < 0x80 ? c == ' ' || (c >= '\t' && c <= '\r') : (Flags[i] & CodepointFlags.Whitespace) != 0;
        }
    }

    private interface ISplitter
    {
        /// <summary>Appends the lengths of the pieces of [<paramref name="start"/>, <paramref name="end"/>).</summary>
        void Split(SplitText text, int start, int end, List<int> output);
    }

    /// <summary>A set of code points as one of llama.cpp's regex fallbacks tests membership.</summary>
    private interface ICharClass
    {
        bool Contains(SplitText text, int i);
    }

    /// <summary>Classes over the collapsed text: ASCII kept, non-ASCII whitespace as VT, other code points as
    /// 0xD1 (number), 0xD2 (letter), 0xD3 (punctuation), 0xD4 (mark), 0xD5 (symbol) or 0xD0 (anything else);
    /// <c>\p{X}</c> becomes that byte plus the ASCII members llama.cpp lists for X.</summary>
    private sealed class Collapsed : ICharClass
    {
        private readonly bool[] _ascii = new bool[128];
        private readonly CodepointFlags _category;

        private Collapsed(CodepointFlags category, string asciiRanges)
        {
            _category = category;
            foreach (var (lo, hi) in ParseRanges(asciiRanges)) for (uint c = lo; c <= hi; c++) _ascii[c] = true;
        }

        public static Collapsed Number => new(CodepointFlags.Number, "0-9");
        public static Collapsed Letter => new(CodepointFlags.Letter, "A-Za-z");
        public static Collapsed Punctuation => new(CodepointFlags.Punctuation, "!-#%-*,-/:-;?-@[-]_{}");

        /// <summary>This class with more ASCII characters, as in <c>[\p{P}\$\+&lt;=&gt;\^~\|]</c>.</summary>
        public Collapsed With(string extra)
        {
            var c = new Collapsed(_category, "");
            Array.Copy(_ascii, c._ascii, 128);
            foreach (char ch in extra) c._ascii[ch] = true;
            return c;
        }

        public bool Contains(SplitText text, int i)
        {
            uint cpt = text.Cpts[i];
            if (cpt < 0x80) return _ascii[cpt];
            var flags = text.Flags[i];
            // Whitespace collapses to VT, which no category class holds; the category byte needs exactly one bit.
            return (flags & CodepointFlags.Whitespace) == 0 && (flags & CodepointFlags.Categories) == _category;
        }
    }

    /// <summary>A bracket expression of code point ranges, as <c>std::wregex</c> tests it on llama.cpp's text
    /// (where non-ASCII whitespace has been replaced by VT).</summary>
    private sealed class Wide : ICharClass
    {
        private readonly (uint Lo, uint Hi)[] _ranges;

        private Wide((uint, uint)[] ranges) => _ranges = ranges;

        public static Wide Of(string bracket) => new(ParseRanges(bracket).ToArray());

        public bool Contains(SplitText text, int i)
        {
            uint cpt = text.Cpts[i];
            if (cpt >= 0x80 && (text.Flags[i] & CodepointFlags.Whitespace) != 0) cpt = 0x0B;
            foreach (var (lo, hi) in _ranges)
                if (cpt >= lo && cpt <= hi) return true;
            return false;
        }
    }

    /// <summary>Parses the inside of a bracket expression ("a-z" ranges and single characters) by code point.</summary>
    private static List<(uint, uint)> ParseRanges(string s)
    {
        var cpts = new List<uint>();
        foreach (var rune in s.EnumerateRunes()) cpts.Add((uint)rune.Value);
        var ranges = new List<(uint, uint)>();
        for (int i = 0; i < cpts.Count; i++)
        {
            if (i + 2 < cpts.Count && cpts[i + 1] == '-')
            {
                ranges.Add((cpts[i], cpts[i + 2]));
                i += 2;
            }
            else ranges.Add((cpts[i], cpts[i]));
        }
        return ranges;
    }

    /// <summary>Splits at leftmost non-overlapping matches of a pattern that never matches the empty string.</summary>
    private abstract class MatchSplitter : ISplitter
    {
        /// <summary>The length of the match starting at <paramref name="at"/>, or 0.</summary>
        protected abstract int MatchAt(SplitText text, int at, int end);

        public void Split(SplitText text, int start, int end, List<int> output)
        {
            int done = start;
            for (int at = start; at < end;)
            {
                int length = MatchAt(text, at, end);
                if (length == 0) { at++; continue; }
                if (at > done) output.Add(at - done);
                output.Add(length);
                at += length;
                done = at;
            }
            if (end > done) output.Add(end - done);
        }
    }

    /// <summary><c>[class]</c>: one member.</summary>
    private sealed class SingleSplitter(ICharClass cls) : MatchSplitter
    {
        protected override int MatchAt(SplitText text, int at, int end) => cls.Contains(text, at) ? 1 : 0;
    }

    /// <summary><c>[class]+</c>: a run of members.</summary>
    private sealed class RunSplitter(ICharClass cls) : MatchSplitter
    {
        protected override int MatchAt(SplitText text, int at, int end)
        {
            int i = at;
            while (i < end && cls.Contains(text, i)) i++;
            return i - at;
        }
    }

    /// <summary><c>\s?[class]+</c>: an optional whitespace, then a run of members (backtracking to no whitespace).</summary>
    private sealed class SpaceThenRunSplitter(ICharClass cls) : MatchSplitter
    {
        protected override int MatchAt(SplitText text, int at, int end)
        {
            int i = at;
            if (text.IsRegexSpace(i) && i + 1 < end && cls.Contains(text, i + 1)) i++;
            int first = i;
            while (i < end && cls.Contains(text, i)) i++;
            return i > first ? i - at : 0;
        }
    }

    /// <summary><c>[0-9][0-9][0-9]</c>.</summary>
    private sealed class ThreeDigitSplitter : MatchSplitter
    {
        private static bool Digit(SplitText t, int i) => t.Cpts[i] is >= '0' and <= '9';

        protected override int MatchAt(SplitText text, int at, int end) =>
            at + 3 <= end && Digit(text, at) && Digit(text, at + 1) && Digit(text, at + 2) ? 3 : 0;
    }

    /// <summary><c>\s+$</c>: the whitespace that ends a piece.</summary>
    private sealed class TrailingSpaceSplitter : ISplitter
    {
        public void Split(SplitText text, int start, int end, List<int> output)
        {
            int i = end;
            while (i > start && text.IsRegexSpace(i - 1)) i--;
            if (i > start) output.Add(i - start);
            if (end > i) output.Add(end - i);
        }
    }

    /// <summary>llama.cpp's scanner for <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>
    /// (<c>unicode_regex_split_custom_gpt2</c>), over llama.cpp's own flags.</summary>
    private sealed class Gpt2Splitter : ISplitter
    {
        public void Split(SplitText text, int start, int end, List<int> output)
        {
            var cpts = text.Cpts;
            var flagsAll = text.Flags;
            uint Cpt(int p) => p >= start && p < end ? cpts[p] : uint.MaxValue;
            CodepointFlags F(int p) => p >= start && p < end ? flagsAll[p] : CodepointFlags.None;
            int prevEnd = start;
            int Add(int e)
            {
                int len = e - prevEnd;
                if (len > 0) output.Add(len);
                prevEnd = e;
                return len;
            }

            for (int pos = start; pos < end;)
            {
                uint cpt = Cpt(pos);
                var flags = F(pos);
                if (cpt == '\'' && pos + 1 < end)
                {
                    uint next = Cpt(pos + 1);
                    if (next is 's' or 't' or 'm' or 'd') { pos += Add(pos + 2); continue; }
                    if (pos + 2 < end)
                    {
                        uint next2 = Cpt(pos + 2);
                        if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l'))
                        { pos += Add(pos + 3); continue; }
                    }
                }

                var flags2 = cpt == ' ' ? F(pos + 1) : flags;
                if ((flags2 & CodepointFlags.Letter) != 0)
                {
                    if (cpt == ' ') pos++;
                    while ((flags2 & CodepointFlags.Letter) != 0) flags2 = F(++pos);
                    Add(pos);
                    continue;
                }
                if ((flags2 & CodepointFlags.Number) != 0)
                {
                    if (cpt == ' ') pos++;
                    while ((flags2 & CodepointFlags.Number) != 0) flags2 = F(++pos);
                    Add(pos);
                    continue;
                }
                if (IsOther(flags2))
                {
                    if (cpt == ' ') pos++;
                    while (IsOther(flags2)) flags2 = F(++pos);
                    Add(pos);
                    continue;
                }

                int spaces = 0;
                while ((F(pos + spaces) & CodepointFlags.Whitespace) != 0) spaces++;
                if (spaces > 1 && Cpt(pos + spaces) != uint.MaxValue)
                {
                    pos += spaces - 1;
                    Add(pos);
                    continue;
                }
                if (spaces > 0)
                {
                    pos += spaces;
                    Add(pos);
                    continue;
                }
                Add(++pos);
            }
        }

        private static bool IsOther(CodepointFlags f) =>
            (f & (CodepointFlags.Whitespace | CodepointFlags.Letter | CodepointFlags.Number)) == 0 && f != CodepointFlags.None;
    }

    /// <summary>llama.cpp's scanner for the Llama 3 expression
    /// <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>
    /// (<c>unicode_regex_split_custom_llama3</c>) and, with single digits, Qwen2's (<c>..._qwen2</c>).</summary>
    private sealed class Llama3Splitter(int digitsPerGroup) : ISplitter
    {
        public void Split(SplitText text, int start, int end, List<int> output)
        {
            var cpts = text.Cpts;
            var flagsAll = text.Flags;
            uint Cpt(int p) => p >= start && p < end ? cpts[p] : uint.MaxValue;
            CodepointFlags F(int p) => p >= start && p < end ? flagsAll[p] : CodepointFlags.None;
            int prevEnd = start;
            int Add(int e)
            {
                int len = e - prevEnd;
                if (len > 0) output.Add(len);
                prevEnd = e;
                return len;
            }

            for (int pos = start; pos < end;)
            {
                uint cpt = Cpt(pos);
                var flags = F(pos);

                if (cpt == '\'' && pos + 1 < end)
                {
                    uint next = UnicodeData.ToLower(Cpt(pos + 1));
                    if (next is 's' or 't' or 'm' or 'd') { pos += Add(pos + 2); continue; }
                    if (pos + 2 < end)
                    {
                        uint next2 = UnicodeData.ToLower(Cpt(pos + 2));
                        if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l'))
                        { pos += Add(pos + 3); continue; }
                    }
                }

                if (!(cpt == '\r' || cpt == '\n' || (flags & CodepointFlags.Number) != 0))
                {
                    if ((flags & CodepointFlags.Letter) != 0 || (F(pos + 1) & CodepointFlags.Letter) != 0)
                    {
                        pos++;
                        while ((F(pos) & CodepointFlags.Letter) != 0) pos++;
                        Add(pos);
                        continue;
                    }
                }

                if ((flags & CodepointFlags.Number) != 0)
                {
                    if (digitsPerGroup == 1)
                    {
                        pos++;
                        Add(pos);
                        continue;
                    }
                    int ini = pos;
                    while ((F(pos) & CodepointFlags.Number) != 0)
                    {
                        if (++pos - ini >= digitsPerGroup)
                        {
                            Add(pos);
                            ini = pos;
                        }
                    }
                    Add(pos);
                    continue;
                }

                var flags2 = cpt == ' ' ? F(pos + 1) : flags;
                // llama.cpp tests flags (not flags2) for "any category" here; kept as is.
                if ((flags2 & (CodepointFlags.Whitespace | CodepointFlags.Letter | CodepointFlags.Number)) == 0 && flags != CodepointFlags.None)
                {
                    if (cpt == ' ') pos++;
                    while ((flags2 & (CodepointFlags.Whitespace | CodepointFlags.Letter | CodepointFlags.Number)) == 0 && flags2 != CodepointFlags.None)
                        flags2 = F(++pos);
                    uint c2 = Cpt(pos);
                    while (c2 == '\r' || c2 == '\n') c2 = Cpt(++pos);
                    Add(pos);
                    continue;
                }

                int spaces = 0, lastLineBreakEnd = 0;
                while ((F(pos + spaces) & CodepointFlags.Whitespace) != 0)
                {
                    uint c2 = Cpt(pos + spaces);
                    if (c2 == '\r' || c2 == '\n') lastLineBreakEnd = pos + spaces + 1;
                    spaces++;
                }
                if (lastLineBreakEnd > 0)
                {
                    pos = lastLineBreakEnd;
                    Add(pos);
                    continue;
                }
                if (spaces > 1 && Cpt(pos + spaces) != uint.MaxValue)
                {
                    pos += spaces - 1;
                    Add(pos);
                    continue;
                }
                if (spaces > 0)
                {
                    pos += spaces;
                    Add(pos);
                    continue;
                }
                Add(++pos);
            }
        }
    }
}
