using System.CommandLine;
using System.Globalization;
using System.Text;
using Squeeze.Gguf;
using Squeeze.Tokenizers;

namespace Squeeze.Cli.Commands;

/// <summary><c>squeeze tokenize -m MODEL (-p TEXT | -f FILE) [--ids] [--no-bos] [--parse-special]</c>: the tokens
/// llama.cpp's <c>llama-tokenize</c> would print for the same model and text.</summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model", "-m") { Description = "The GGUF model (or vocabulary-only GGUF) whose tokenizer to use.", Required = true };
        var prompt = new Option<string?>("--prompt", "-p") { Description = "The text to tokenize." };
        var file = new Option<FileInfo?>("--file", "-f") { Description = "A file whose contents to tokenize." };
        var ids = new Option<bool>("--ids") { Description = "Print only the token ids, as a list: [1, 2, 3]." };
        var noBos = new Option<bool>("--no-bos") { Description = "Do not add the BOS/EOS tokens the vocabulary asks for." };
        var parseSpecial = new Option<bool>("--parse-special") { Description = "Turn the text of control tokens (e.g. <|im_start|>) into those tokens." };
        var command = new Command("tokenize", "Tokenize text as llama.cpp does and print the tokens.") { model, prompt, file, ids, noBos, parseSpecial };
        command.SetAction(p => CommandRunner.Run(() =>
            Run(p.GetRequiredValue(model), p.GetValue(prompt), p.GetValue(file), p.GetValue(ids), p.GetValue(noBos), p.GetValue(parseSpecial))));
        return command;
    }

    private static int Run(FileInfo modelPath, string? prompt, FileInfo? file, bool idsOnly, bool noBos, bool parseSpecial)
    {
        if ((prompt is null) == (file is null))
            throw new InvalidInputException("give the text with exactly one of -p TEXT or -f FILE");
        byte[] text = prompt is not null ? Encoding.UTF8.GetBytes(prompt) : File.ReadAllBytes(file!.FullName);

        Tokenizer tokenizer;
        using (var gguf = GgufFile.Open(modelPath.FullName)) tokenizer = Tokenizer.FromGguf(gguf);
        var tokens = tokenizer.Encode(text, addSpecial: !noBos, parseSpecial: parseSpecial);

        var output = new StringBuilder(tokens.Length * 16);
        if (idsOnly)
        {
            output.Append('[');
            for (int i = 0; i < tokens.Length; i++)
            {
                if (i > 0) output.Append(", ");
                output.Append(tokens[i].ToString(CultureInfo.InvariantCulture));
            }
            output.Append(']').Append('\n');
        }
        else
        {
            foreach (int t in tokens)
            {
                string piece = Encoding.UTF8.GetString(tokenizer.TokenToPiece(t, special: true));
                output.Append(t.ToString(CultureInfo.InvariantCulture).PadLeft(6)).Append(" -> '").Append(piece).Append("'\n");
            }
        }
        Console.Out.Write(output.ToString());
        return CommandRunner.Ok;
    }
}
