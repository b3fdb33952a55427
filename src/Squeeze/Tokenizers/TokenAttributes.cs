namespace Squeeze.Tokenizers;

/// <summary>A token's attributes, with llama.cpp's values (<c>llama_token_attr</c>).</summary>
[Flags]
public enum TokenAttributes
{
    Undefined = 0,
    Unknown = 1 << 0,
    Unused = 1 << 1,
    Normal = 1 << 2,
    Control = 1 << 3,
    UserDefined = 1 << 4,
    Byte = 1 << 5,
    Normalized = 1 << 6,
    /// <summary>Whitespace before the token is dropped when special tokens are split out of text.</summary>
    LStrip = 1 << 7,
    /// <summary>Whitespace after the token is dropped when special tokens are split out of text.</summary>
    RStrip = 1 << 8,
    SingleWord = 1 << 9,
}

/// <summary>The token types GGUF stores in <c>tokenizer.ggml.token_type</c> (<c>llama_token_type</c>).</summary>
public enum GgufTokenType
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>The tokenizer family named by <c>tokenizer.ggml.model</c>.</summary>
public enum VocabType
{
    /// <summary><c>llama</c>: SentencePiece-style merges by score with byte fallback.</summary>
    Spm,
    /// <summary><c>gpt2</c>: byte-level BPE with ranked merges and a pre-tokenizer.</summary>
    Bpe,
    /// <summary><c>bert</c>: WordPiece (longest match per word).</summary>
    Wpm,
}
