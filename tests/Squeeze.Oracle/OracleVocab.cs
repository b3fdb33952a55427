namespace Squeeze.Oracle;

/// <summary>
/// llama.cpp's tokenizer for one GGUF vocabulary: the model loaded with <c>vocab_only</c>, then
/// <c>llama_tokenize</c>, <c>llama_token_to_piece</c> and <c>llama_detokenize</c> on its <c>llama_vocab</c>.
/// </summary>
public sealed unsafe class OracleVocab : IDisposable
{
    private nint _model;

    private OracleVocab(nint model)
    {
        _model = model;
        Vocab = Native.llama_model_get_vocab(model);
        Count = Native.llama_vocab_n_tokens(Vocab);
    }

    /// <summary>The <c>llama_vocab</c> pointer.</summary>
    public nint Vocab { get; }

    public int Count { get; }

    /// <summary>Loads only the vocabulary of <paramref name="path"/>.</summary>
    public static OracleVocab Load(string path)
    {
        OracleLibrary.EnsureLoaded();
        if (!File.Exists(path)) throw new FileNotFoundException("model not found", path);
        var p = Native.llama_model_default_params();
        p.VocabOnly = 1;
        nint model = Native.llama_model_load_from_file(path, p);
        if (model == 0) throw new InvalidOperationException($"llama.cpp could not load the vocabulary of {path}");
        return new OracleVocab(model);
    }

    public int[] Tokenize(ReadOnlySpan<byte> text, bool addSpecial, bool parseSpecial)
    {
        var tokens = new int[text.Length + 8];
        fixed (byte* t = text)
        fixed (int* o = tokens)
        {
            int n = Native.llama_tokenize(Vocab, t, text.Length, o, tokens.Length, B(addSpecial), B(parseSpecial));
            if (n >= 0) return tokens[..n];
            tokens = new int[-n];
            fixed (int* o2 = tokens)
                n = Native.llama_tokenize(Vocab, t, text.Length, o2, tokens.Length, B(addSpecial), B(parseSpecial));
            if (n < 0) throw new InvalidOperationException("llama_tokenize asked for more room twice");
            return tokens[..n];
        }
    }

    public byte[] TokenToPiece(int token, bool special, int lstrip = 0)
    {
        CheckToken(token);
        var buf = new byte[256];
        fixed (byte* b = buf)
        {
            int n = Native.llama_token_to_piece(Vocab, token, b, buf.Length, lstrip, B(special));
            if (n >= 0) return buf[..n];
            buf = new byte[-n];
        }
        fixed (byte* b = buf)
        {
            int n = Native.llama_token_to_piece(Vocab, token, b, buf.Length, lstrip, B(special));
            return buf[..n];
        }
    }

    public byte[] Detokenize(ReadOnlySpan<int> tokens, bool removeSpecial, bool unparseSpecial)
    {
        foreach (int t in tokens) CheckToken(t);
        var buf = new byte[tokens.Length * 16 + 64];
        fixed (int* tk = tokens)
        {
            fixed (byte* b = buf)
            {
                int n = Native.llama_detokenize(Vocab, tk, tokens.Length, b, buf.Length, B(removeSpecial), B(unparseSpecial));
                if (n >= 0) return buf[..n];
                buf = new byte[-n];
            }
            fixed (byte* b = buf)
            {
                int n = Native.llama_detokenize(Vocab, tk, tokens.Length, b, buf.Length, B(removeSpecial), B(unparseSpecial));
                return buf[..n];
            }
        }
    }

    public int Attributes(int token) => Native.llama_vocab_get_attr(Vocab, CheckToken(token));
    public string? Text(int token) => Native.Utf8(Native.llama_vocab_get_text(Vocab, CheckToken(token)));
    public bool IsEog(int token) => Native.llama_vocab_is_eog(Vocab, token) != 0;
    public int Bos => Native.llama_vocab_bos(Vocab);
    public int Eos => Native.llama_vocab_eos(Vocab);
    public int Eot => Native.llama_vocab_eot(Vocab);
    public int Sep => Native.llama_vocab_sep(Vocab);
    public int Pad => Native.llama_vocab_pad(Vocab);
    public bool AddBos => Native.llama_vocab_get_add_bos(Vocab) != 0;
    public bool AddEos => Native.llama_vocab_get_add_eos(Vocab) != 0;
    public bool AddSep => Native.llama_vocab_get_add_sep(Vocab) != 0;

    private int CheckToken(int token) =>
        (uint)token < (uint)Count ? token : throw new ArgumentOutOfRangeException(nameof(token)); // llama.cpp would abort

    private static byte B(bool b) => b ? (byte)1 : (byte)0;

    public void Dispose()
    {
        if (_model != 0) Native.llama_model_free(_model);
        _model = 0;
    }
}
