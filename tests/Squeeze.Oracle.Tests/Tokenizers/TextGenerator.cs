using System.Text;

namespace Squeeze.Oracle.Tests.Tokenizers;

/// <summary>Seeded strings that stress tokenizers: mixed scripts, emoji sequences, whitespace runs, digits,
/// contractions, punctuation, combining marks, rare code points and the text of special tokens.</summary>
internal sealed class TextGenerator(int seed, IReadOnlyList<string> specialTexts)
{
    private readonly Random _rng = new(seed);

    private static readonly string[] Spaces =
        [" ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", "  \n", " \n ", "\r", "\u00A0", "\u3000", "\u2009", "\u0085", "\v", "\f", "\u001C", "\u200B", "\u2028"];
    private static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'Re", "'VE", "'"];
    private static readonly string[] Emoji =
        ["😀", "🦙", "🚀", "👨‍👩‍👧", "🇺🇸", "👍🏽", "❤️", "1️⃣", "😶‍🌫️", "✅", "🙏", "🤖"];
    private static readonly (int Lo, int Hi)[] Scripts =
    [
        (0x4E00, 0x9FA5), (0x3041, 0x3096), (0xAC00, 0xD7A3), (0x0410, 0x044F), (0x0391, 0x03C9), (0x0620, 0x064A),
        (0x0905, 0x0939), (0x0E01, 0x0E2E), (0x05D0, 0x05EA), (0x00C0, 0x024F), (0xFF01, 0xFF5E), (0x10400, 0x1044F),
        (0x1D400, 0x1D4FF), (0x0800, 0x0815), (0x1780, 0x17B3), (0x2160, 0x2188), (0x0660, 0x0669), (0x00B2, 0x00BE),
    ];

    public string Next(bool withSpecials = true)
    {
        var sb = new StringBuilder();
        int parts = _rng.Next(0, 24);
        for (int i = 0; i < parts; i++)
        {
            if (_rng.Next(3) == 0) sb.Append(' ');
            switch (_rng.Next(withSpecials && specialTexts.Count > 0 ? 15 : 14))
            {
                case 0: Word(sb, 'a', 26); break;
                case 1: Word(sb, 'A', 26); if (_rng.Next(2) == 0) Word(sb, 'a', 26); break;
                case 2: Word(sb, '0', 10, 14); break;
                case 3: for (int k = _rng.Next(1, 4); k > 0; k--) sb.Append(Pick(Spaces)); break;
                case 4: for (int k = _rng.Next(1, 5); k > 0; k--) sb.Append("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"[_rng.Next(32)]); break;
                case 5: sb.Append(Pick(Contractions)); break;
                case 6:
                case 7:
                {
                    var (lo, hi) = Pick(Scripts);
                    for (int k = _rng.Next(1, 6); k > 0; k--) sb.Append(char.ConvertFromUtf32(_rng.Next(lo, hi + 1)));
                    if (_rng.Next(4) == 0) sb.Append(char.ConvertFromUtf32(_rng.Next(0x0300, 0x0370))); // combining mark
                    break;
                }
                case 8: sb.Append(Pick(Emoji)); break;
                case 9: sb.Append(char.ConvertFromUtf32(RandomCodepoint(0x10000))); break;
                case 10: sb.Append(char.ConvertFromUtf32(RandomCodepoint(0x110000))); break;
                case 11: sb.Append(Pick(["▁", "Ġ", "<0x41>", "<s>", "</s>", "<unk>", "\u00AD", "\uFFFD", "\u0000", "\u007F"])); break;
                case 12: sb.Append(Pick(["Hello world", " hello", "HELLO", "I've been 'told he's there", "3.14159", "1,000,000", "e.g.", "...", "---", "```", "\"\"\"\""])); break;
                case 13: Word(sb, 'a', 26, 40); break;
                default: sb.Append(Pick(specialTexts)); break;
            }
        }
        return sb.ToString();
    }

    private int RandomCodepoint(int limit)
    {
        while (true)
        {
            int c = _rng.Next(1, limit);
            if (c is < 0xD800 or > 0xDFFF) return c;
        }
    }

    /// <summary>Random bytes, often malformed UTF-8.</summary>
    public byte[] NextBytes()
    {
        var b = new byte[_rng.Next(0, 24)];
        _rng.NextBytes(b);
        for (int i = 0; i < b.Length; i++) if (_rng.Next(3) == 0) b[i] = (byte)_rng.Next(0x20, 0x7F);
        return b;
    }

    private void Word(StringBuilder sb, char first, int count, int maxLength = 9)
    {
        for (int k = _rng.Next(1, maxLength); k > 0; k--) sb.Append((char)(first + _rng.Next(count)));
    }

    private T Pick<T>(IReadOnlyList<T> items) => items[_rng.Next(items.Count)];
}
