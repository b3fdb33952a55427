using Squeeze.Gguf;
using Squeeze.Tokenizers;
using Xunit;

namespace Squeeze.Tests.Tokenizers;

/// <summary>Tokenizers built from hand-made vocabularies: the algorithms on cases small enough to check by hand, and
/// one test per rule that rejects bad tokenizer metadata.</summary>
public class TokenizerMetadataTests
{
    private static Tokenizer Build(Action<GgufWriter> set)
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Architecture, GgufValue.String("llama"));
        set(w);
        var path = Path.GetTempFileName();
        try
        {
            w.WriteTo(path);
            return Tokenizer.Open(path);
        }
        finally { File.Delete(path); }
    }

    private static void Spm(GgufWriter w, string[] tokens, float[] scores, int[] types)
    {
        w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("llama"));
        w.Set(GgufKeys.Tokenizer.Tokens, GgufValue.Strings(tokens));
        w.Set(GgufKeys.Tokenizer.Scores, GgufValue.Array(GgufArray.Of(scores)));
        w.Set(GgufKeys.Tokenizer.TokenType, GgufValue.Array(GgufArray.Of(types)));
    }

    private static readonly string[] SpmTokens = ["<unk>", "<s>", "</s>", "▁", "a", "b", "ab", "▁a", "▁ab", "<0x0A>", "bb"];
    private static readonly float[] SpmScores = [0, 0, 0, -1, -2, -2, -3, -4, -5, 0, -0.5f];
    private static readonly int[] SpmTypes = [2, 3, 3, 1, 1, 1, 1, 1, 1, 6, 1];

    [Fact]
    public void Spm_merges_the_highest_scoring_pair_first_and_falls_back_to_bytes()
    {
        var t = Build(w => Spm(w, SpmTokens, SpmScores, SpmTypes));
        Assert.Equal(VocabType.Spm, t.Type);
        Assert.True(t.AddBos);
        // "ab" -> "▁ab": ▁+a (score of "▁a" -4) vs a+b (score of "ab" -3): "ab" first, then "▁"+"ab" = "▁ab".
        Assert.Equal([1, 8], t.Encode("ab"));
        // "abb": b+b ("bb", -0.5) beats a+b; then nothing joins "▁a" and "bb"... "▁"+"a" = "▁a" (-4).
        Assert.Equal([7, 10], t.Encode("abb", addSpecial: false));
        // A newline has only its byte token.
        Assert.Equal([3, 9], t.Encode("\n", addSpecial: false));
        Assert.Equal("ab\n", t.Decode(t.Encode("ab\n"), removeSpecial: true).TrimStart());
        Assert.Equal("ab", t.Decode([8]));
    }

    [Fact]
    public void Spm_without_a_byte_token_for_a_character_is_an_input_error()
    {
        var t = Build(w => Spm(w, SpmTokens, SpmScores, SpmTypes));
        Assert.Throws<InvalidInputException>(() => t.Encode("c"));
    }

    [Fact]
    public void Control_tokens_are_split_out_only_with_parse_special()
    {
        var t = Build(w => Spm(w, SpmTokens, SpmScores, SpmTypes));
        Assert.Equal([2], t.Encode("</s>", addSpecial: false, parseSpecial: true));
        // Read as text, "</s>" needs byte tokens this vocabulary lacks.
        Assert.Throws<InvalidInputException>(() => t.Encode("</s>", addSpecial: false, parseSpecial: false));
    }

    [Fact]
    public void A_missing_model_key_is_named()
    {
        var e = Assert.Throws<InvalidInputException>(() => Build(_ => { }));
        Assert.Contains(GgufKeys.Tokenizer.Model, e.Message);
    }

    [Fact]
    public void An_unknown_tokenizer_model_is_named()
    {
        var e = Assert.Throws<InvalidInputException>(() => Build(w => w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("t5"))));
        Assert.Contains("'t5'", e.Message);
    }

    [Fact]
    public void Missing_tokens_are_named()
    {
        var e = Assert.Throws<InvalidInputException>(() => Build(w => w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("llama"))));
        Assert.Contains(GgufKeys.Tokenizer.Tokens, e.Message);
    }

    [Fact]
    public void A_repeated_token_is_named()
    {
        var e = Assert.Throws<InvalidInputException>(() => Build(w => Spm(w, ["a", "b", "a"], [0, 0, 0], [1, 1, 1])));
        Assert.Contains("tokens[2]", e.Message);
    }

    [Fact]
    public void Too_few_scores_are_named()
    {
        var e = Assert.Throws<InvalidInputException>(() => Build(w => Spm(w, ["a", "b", "c"], [0, 0], [1, 1, 1])));
        Assert.Contains(GgufKeys.Tokenizer.Scores, e.Message);
    }

    [Fact]
    public void Token_types_of_the_wrong_type_are_named()
    {
        var e = Assert.Throws<InvalidInputException>(() => Build(w =>
        {
            Spm(w, ["a", "b"], [0, 0], [1, 1]);
            w.Set(GgufKeys.Tokenizer.TokenType, GgufValue.Strings(["1", "1"]));
        }));
        Assert.Contains(GgufKeys.Tokenizer.TokenType, e.Message);
    }

    [Fact]
    public void A_bpe_vocabulary_needs_merges()
    {
        var e = Assert.Throws<InvalidInputException>(() => Build(w =>
        {
            w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("gpt2"));
            w.Set(GgufKeys.Tokenizer.Pre, GgufValue.String("gpt-2"));
            w.Set(GgufKeys.Tokenizer.Tokens, GgufValue.Strings(["a", "b"]));
        }));
        Assert.Contains(GgufKeys.Tokenizer.Merges, e.Message);
    }

    [Fact]
    public void An_unknown_pre_tokenizer_is_named()
    {
        var e = Assert.Throws<InvalidInputException>(() => Build(w =>
        {
            w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("gpt2"));
            w.Set(GgufKeys.Tokenizer.Pre, GgufValue.String("no-such-pre"));
            w.Set(GgufKeys.Tokenizer.Tokens, GgufValue.Strings(["a", "b"]));
            w.Set(GgufKeys.Tokenizer.Merges, GgufValue.Strings(["a b"]));
        }));
        Assert.Contains("'no-such-pre'", e.Message);
    }

    [Fact]
    public void Bpe_merges_by_rank_within_words()
    {
        // GPT-2 alphabet: 'Ġ' is the space byte. Merges: "a b" (rank 0), "Ġ a" (rank 1), "Ġa b" (rank 2).
        var t = Build(w =>
        {
            w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("gpt2"));
            w.Set(GgufKeys.Tokenizer.Pre, GgufValue.String("gpt-2"));
            w.Set(GgufKeys.Tokenizer.Tokens, GgufValue.Strings(["a", "b", "Ġ", "ab", "Ġa", "Ġab", "!"]));
            w.Set(GgufKeys.Tokenizer.Merges, GgufValue.Strings(["a b", "Ġ a", "Ġa b"]));
        });
        Assert.False(t.AddBos);
        // "ab ab!": words "ab", " ab", "!". " ab": a+b first (rank 0) -> "Ġ"+"ab": no merge for (Ġ, ab).
        Assert.Equal([3, 2, 3, 6], t.Encode("ab ab!"));
        Assert.Equal("ab ab!", t.Decode([3, 2, 3, 6]));
    }
}
