using System.Text;

namespace Squeeze.Tokenizers;

public sealed partial class Tokenizer
{
    /// <summary>
    /// The bytes a token stands for (<c>llama_token_to_piece</c>): a normal token's text with ▁ read as a space (SPM)
    /// or mapped back through the byte-level alphabet (BPE), a byte token's byte, a control, unknown or user-defined
    /// token's text as stored. Control and unknown tokens give nothing unless <paramref name="special"/>.
    /// </summary>
    /// <param name="token">The token id.</param>
    /// <param name="special">Render control and unknown tokens.</param>
    /// <param name="lstrip">Drop up to this many leading spaces.</param>
    public byte[] TokenToPiece(int token, bool special = true, int lstrip = 0)
    {
        var attr = _attrs[CheckToken(token)];
        if (!special && (attr & (TokenAttributes.Unknown | TokenAttributes.Control)) != 0) return [];
        var piece = _pieces[token];
        int skip = 0;
        while (skip < lstrip && skip < piece.Length && piece[skip] == ' ') skip++;
        return skip == 0 ? (byte[])piece.Clone() : piece[skip..];
    }

    /// <summary>
    /// The text of a token sequence as bytes (<c>llama_detokenize</c>): pieces joined, the SPM leading space removed,
    /// and, for vocabularies that ask for it, spaces before punctuation and contractions cleaned up.
    /// </summary>
    /// <param name="tokens">The token ids.</param>
    /// <param name="removeSpecial">Drop a leading BOS and trailing EOS the vocabulary would have added.</param>
    /// <param name="unparseSpecial">Render control and unknown tokens as their text.</param>
    public byte[] Detokenize(ReadOnlySpan<int> tokens, bool removeSpecial = false, bool unparseSpecial = false)
    {
        bool removeSpace = AddSpacePrefix;
        if (removeSpecial && AddBos && tokens.Length > 0 && tokens[0] == Bos)
        {
            removeSpace = false;
            tokens = tokens[1..];
        }
        if (removeSpecial && AddEos && tokens.Length > 0 && tokens[^1] == Eos) tokens = tokens[..^1];

        var text = new List<byte>();
        foreach (int token in tokens)
        {
            var attr = _attrs[CheckToken(token)];
            bool render = unparseSpecial || (attr & (TokenAttributes.Unknown | TokenAttributes.Control)) == 0;
            if (render)
            {
                var piece = _pieces[token];
                int skip = removeSpace && piece.Length > 0 && piece[0] == ' ' ? 1 : 0;
                for (int i = skip; i < piece.Length; i++) text.Add(piece[i]);
            }
            removeSpace = false;
        }
        var bytes = text.ToArray();
        return CleanSpaces ? Clean(bytes) : bytes;
    }

    /// <summary><see cref="Detokenize"/> as a string (malformed UTF-8 becomes U+FFFD).</summary>
    public string Decode(ReadOnlySpan<int> tokens, bool removeSpecial = false, bool unparseSpecial = false) =>
        Encoding.UTF8.GetString(Detokenize(tokens, removeSpecial, unparseSpecial));

    /// <summary>llama.cpp's three clean-up passes: " ?", " !", " .", " ," lose the space; a lone " ' " loses both
    /// spaces; " 's", " 'm", " 're", " 've" lose the space.</summary>
    private static byte[] Clean(byte[] t)
    {
        int total = t.Length;
        // Pass 1.
        int n1 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < n1; i++)
        {
            byte x = t[i];
            if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
            t[total++] = x;
        }
        // Pass 2.
        int n2 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < n2; i++)
        {
            byte x = t[i];
            if (x == '\'' && i + 1 < n2 && t[i - 1] == ' ' && t[i + 1] == ' ')
            {
                total--;
                t[++i] = 0;
            }
            t[total++] = x;
        }
        // Pass 3.
        int n3 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < n3; i++)
        {
            byte x = t[i];
            if (t[i - 1] == ' ' && x == '\'' && i + 1 < n3)
            {
                byte x1 = t[i + 1];
                if (x1 == 's' || x1 == 'm') total--;
                else if (i + 2 < n3)
                {
                    byte x2 = t[i + 2];
                    if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
                }
            }
            t[total++] = x;
        }
        return t[..total];
    }

    /// <summary>The piece llama.cpp caches for a token at load (<c>token_to_piece</c> with <c>special</c>).</summary>
    private byte[] ComputePiece(int id)
    {
        var attr = _attrs[id];
        string text = _texts[id];
        if ((attr & (TokenAttributes.Unknown | TokenAttributes.Control | TokenAttributes.UserDefined)) != 0)
            return ByteString.ToBytes(text);
        if ((attr & TokenAttributes.Normal) != 0)
        {
            if (Type != VocabType.Bpe || EscapeWhitespaces) return ByteString.ToBytes(text.Replace(Escaped, " ", StringComparison.Ordinal));
            return DecodeByteLevel(text);
        }
        if ((attr & TokenAttributes.Byte) != 0)
        {
            // <0xXX>: llama.cpp parses the two hex digits with strtol (stopping at the first non-digit).
            int value = 0;
            for (int i = 3; i < Math.Min(5, text.Length); i++)
            {
                int d = HexDigit(text[i]);
                if (d < 0) break;
                value = value * 16 + d;
            }
            return [(byte)value];
        }
        return [];
    }

    private static int HexDigit(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    /// <summary>llama.cpp's <c>llama_decode_text</c>: each code point of a byte-level token back to its byte; one
    /// outside the alphabet is written as "[UNK_BYTE_0x..." followed by the whole token text and "]".</summary>
    private static byte[] DecodeByteLevel(string byteText)
    {
        var raw = ByteString.ToBytes(byteText);
        var cpts = Utf8Text.Decode(raw);
        var result = new List<byte>(cpts.Length);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (uint cpt in cpts)
        {
            int b = cpt < (uint)ByteLevel.CodepointToByte.Length ? ByteLevel.CodepointToByte[cpt] : -1;
            if (b >= 0)
            {
                result.Add((byte)b);
                continue;
            }
            result.AddRange("[UNK_BYTE_0x"u8);
            int n = Utf8Text.Encode(cpt, utf8);
            for (int i = 0; i < n; i++) result.AddRange(Encoding.ASCII.GetBytes(utf8[i].ToString("x2")));
            result.AddRange(raw);
            result.Add((byte)']');
        }
        return result.ToArray();
    }
}
