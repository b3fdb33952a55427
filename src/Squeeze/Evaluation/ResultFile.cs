using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Squeeze.Gguf;
using Squeeze.IO;
using Squeeze.Models;
using Squeeze.Quantization;

namespace Squeeze.Evaluation;

/// <summary>What a result says about the model it measured: enough for a model card's size columns.</summary>
/// <param name="File">The file name (the key <c>squeeze report</c> groups results by).</param>
/// <param name="Path">The path as given.</param>
/// <param name="FileBytes">Bytes of the GGUF file.</param>
/// <param name="TensorBytes">Bytes of tensor data (llama.cpp's <c>llama_model_size</c>).</param>
/// <param name="Parameters">Elements of all tensors (llama.cpp's <c>llama_model_n_params</c>).</param>
/// <param name="BitsPerWeight">8 · tensor bytes / parameters.</param>
/// <param name="Architecture">general.architecture.</param>
/// <param name="FileType">general.file_type by llama.cpp's name (<c>Q4_K_M</c>), or null.</param>
public sealed record ModelInfo(string File, string Path, long FileBytes, long TensorBytes, long Parameters, double BitsPerWeight, string? Architecture, string? FileType)
{
    public static ModelInfo Of(GgufFile file, string path)
    {
        var totals = TensorGroupSummary.Of(file.Tensors);
        string? fileType = null;
        if (file.Find(GgufKeys.General.FileType) is { } ft)
        {
            long id = ft.AsInt64();
            fileType = id >= 0 && LlamaFileTypes.IsDefined((uint)id) ? LlamaFileTypes.Get((LlamaFileType)id).Name : id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return new ModelInfo(System.IO.Path.GetFileName(path), path, file.Length, totals.Bytes, totals.Parameters, totals.BitsPerWeight, file.Architecture, fileType);
    }
}

/// <summary>
/// The score of one task run (HellaSwag, WinoGrande, a multiple-choice set), for task scorers to save with
/// <see cref="ResultFile.Write"/> under their kind; <c>squeeze report</c> shows <paramref name="Accuracy"/> in a column
/// named <paramref name="Task"/>.
/// </summary>
/// <param name="Task">Column name in reports, e.g. <c>HellaSwag</c>, <c>ARC-Challenge</c>.</param>
/// <param name="Tasks">Tasks scored.</param>
/// <param name="Accuracy">Percent correct.</param>
/// <param name="Uncertainty">± in percent.</param>
public sealed record TaskScoreResult(string Task, int Tasks, double Accuracy, double Uncertainty);

/// <summary>
/// A saved result (<c>--json FILE</c> of <c>squeeze perplexity</c>, <c>bench</c> and the task modes): an envelope
/// <c>{ squeeze_result: KIND, format_version, created_utc, model: ModelInfo, dataset, result: {...} }</c> in snake_case,
/// which <c>squeeze report</c> combines.
/// </summary>
public static class ResultFile
{
    public const int FormatVersion = 1;

    /// <summary>Kinds written by Squeeze's commands.</summary>
    public static class Kinds
    {
        public const string Perplexity = "perplexity";
        public const string KlDivergence = "kl-divergence";
        public const string Bench = "bench";
    }

    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The envelope as JSON text.</summary>
    public static string ToJson<T>(string kind, ModelInfo? model, string? dataset, T result)
    {
        var root = new JsonObject
        {
            ["squeeze_result"] = kind,
            ["format_version"] = FormatVersion,
            ["created_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
            ["model"] = model is null ? null : JsonSerializer.SerializeToNode(model, Options),
            ["dataset"] = dataset,
            ["result"] = JsonSerializer.SerializeToNode(result, Options),
        };
        return root.ToJsonString(Options) + "\n";
    }

    /// <summary>Writes the envelope to <paramref name="path"/> atomically.</summary>
    public static void Write<T>(string path, string kind, ModelInfo? model, string? dataset, T result)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(ToJson(kind, model, dataset, result));
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>A result read back: its kind, model, dataset and the <c>result</c> object.</summary>
    public sealed record Loaded(string Path, string Kind, ModelInfo? Model, string? Dataset, JsonNode Result);

    /// <summary>Reads a result file (or a JSON array of them); a file that is not one is an <see cref="InvalidInputException"/>.</summary>
    public static IReadOnlyList<Loaded> Read(string path)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidInputException($"{path}: not JSON ({e.Message})"); }
        var items = root is JsonArray array ? array.ToList() : [root];
        var list = new List<Loaded>();
        foreach (var item in items)
        {
            if (item is not JsonObject o || o["squeeze_result"] is not JsonValue kindNode || !kindNode.TryGetValue<string>(out var kind))
                throw new InvalidInputException($"{path}: not a Squeeze result (no \"squeeze_result\" kind)");
            if (o["result"] is not JsonNode result)
                throw new InvalidInputException($"{path}: the {kind} result has no \"result\" object");
            ModelInfo? model;
            try { model = o["model"]?.Deserialize<ModelInfo>(Options); }
            catch (JsonException e) { throw new InvalidInputException($"{path}: \"model\" is not valid ({e.Message})"); }
            list.Add(new Loaded(path, kind, model, o["dataset"]?.GetValue<string>(), result));
        }
        return list;
    }
}
