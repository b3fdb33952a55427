using System.CommandLine;
using System.Globalization;
using System.Text;
using Squeeze.Models;
using Squeeze.Numerics;
using Squeeze.Tokenizers;

namespace Squeeze.Cli.Commands;

/// <summary><c>squeeze generate -m MODEL -p PROMPT [-n 64] [--temp 0] [--seed S] [--threads N] [--ids]</c>.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model", "-m") { Description = "The GGUF model to run.", Required = true };
        var prompt = new Option<string>("--prompt", "-p") { Description = "The prompt (BOS is added as the vocabulary asks; control-token text is parsed).", DefaultValueFactory = _ => "" };
        var count = new Option<int>("--n-predict", "-n") { Description = "Tokens to generate.", DefaultValueFactory = _ => 64 };
        var temp = new Option<float>("--temp") { Description = "Sampling temperature; 0 is greedy.", DefaultValueFactory = _ => 0f };
        var seed = new Option<int>("--seed") { Description = "Seed for sampling.", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads", "-t") { Description = "Worker threads.", DefaultValueFactory = _ => Workers.DefaultThreads };
        var ids = new Option<bool>("--ids") { Description = "Print the generated token ids instead of text." };
        var command = new Command("generate", "Run a model on a prompt and print what it generates.") { model, prompt, count, temp, seed, threads, ids };
        command.SetAction(p => CommandRunner.Run(() => Run(p.GetRequiredValue(model), p.GetValue(prompt) ?? "", p.GetValue(count),
            p.GetValue(temp), p.GetValue(seed), p.GetValue(threads), p.GetValue(ids))));
        return command;
    }

    private static int Run(FileInfo path, string prompt, int count, float temperature, int seed, int threads, bool idsOnly)
    {
        if (count < 0) throw new InvalidInputException($"--n-predict must be 0 or more, not {count}");
        if (threads < 1) throw new InvalidInputException($"--threads must be at least 1, not {threads}");
        if (!(temperature >= 0)) throw new InvalidInputException($"--temp must be 0 or more, not {temperature}");
        using var model = TransformerModel.Load(path.FullName);
        var tokenizer = Tokenizer.FromGguf(model.File);
        var tokens = tokenizer.Encode(Encoding.UTF8.GetBytes(prompt), addSpecial: true, parseSpecial: true);
        if (tokens.Length == 0) tokens = [tokenizer.Bos];
        // The cache holds just what this run needs (up to the trained context), not the model's whole context.
        int context = Math.Min(model.Hparams.ContextLength, tokens.Length + Math.Max(count, 1));
        if (tokens.Length >= model.Hparams.ContextLength)
            throw new InvalidInputException($"the prompt has {tokens.Length} tokens; the model's context is {model.Hparams.ContextLength}");
        var transformer = new Transformer(model, contextSize: context, threads: threads);
        var generator = new Generator(transformer, temperature, seed);
        var utf8 = Encoding.UTF8.GetDecoder();
        var output = Console.Out;
        var ids = new List<int>();
        foreach (int token in generator.Generate(tokens, count, tokenizer.IsEndOfGeneration))
        {
            if (idsOnly) { ids.Add(token); continue; }
            if (tokenizer.IsEndOfGeneration(token)) break;
            // Pieces can end inside a UTF-8 character: decode incrementally.
            var piece = tokenizer.TokenToPiece(token, special: false);
            var chars = new char[piece.Length + 4]; // a UTF-8 byte makes at most one char, plus up to 3 pending bytes
            int n = utf8.GetChars(piece, 0, piece.Length, chars, 0, flush: false);
            output.Write(chars, 0, n);
            output.Flush();
        }
        if (idsOnly) output.WriteLine("[" + string.Join(", ", ids.Select(i => i.ToString(CultureInfo.InvariantCulture))) + "]");
        else output.WriteLine();
        return CommandRunner.Ok;
    }
}
