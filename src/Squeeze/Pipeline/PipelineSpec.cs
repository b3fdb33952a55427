using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Squeeze.Pipeline;

/// <summary>A pipeline file (<c>squeeze run PIPELINE</c>) is wrong: names the file, the field and the problem.</summary>
public sealed class PipelineFormatException(string message, Exception? inner = null)
    : InvalidInputException(message, inner ?? new Exception(message));

/// <summary>
/// What <c>squeeze run</c> does, as read from a YAML or JSON file (keys in snake_case). Paths are relative to the
/// file's folder. The steps: convert (when <see cref="Source"/> is a Hugging Face folder), base perplexity with saved
/// logits, importance matrix and its statistics, then for each candidate: quantize, evaluate; finally the report.
/// </summary>
public sealed class PipelineSpec
{
    /// <summary>A Hugging Face checkpoint folder (converted first) or a GGUF model (F32/F16/BF16).</summary>
    public string Source { get; set; } = "";

    /// <summary>The type of the converted base model: f32, f16 or bf16.</summary>
    public string BaseType { get; set; } = "f16";

    /// <summary>The folder that receives models, results, the report and the log.</summary>
    public string Output { get; set; } = "squeeze-out";

    /// <summary>Worker threads for every step (0: the default, physical cores).</summary>
    public int Threads { get; set; }

    /// <summary>Calibration text files for the importance matrix, concatenated in order.</summary>
    public List<string> Calibration { get; set; } = [];

    public ImatrixSettings Imatrix { get; set; } = new();

    public EvaluationSettings Evaluation { get; set; } = new();

    /// <summary>The quantizations to make and compare.</summary>
    public List<CandidateSpec> Candidates { get; set; } = [];

    /// <summary>The folder the file was read from; relative paths resolve against it.</summary>
    [YamlIgnore] public string BaseDirectory { get; private set; } = ".";

    /// <summary>The absolute path of a path written in the file.</summary>
    public string Resolve(string path) => Path.GetFullPath(Path.Combine(BaseDirectory, path));

    /// <summary>Whether the source is a Hugging Face folder that needs converting.</summary>
    [YamlIgnore] public bool SourceIsCheckpoint => Directory.Exists(Resolve(Source));

    /// <summary>Reads and validates a pipeline file (YAML, or JSON, which is YAML too).</summary>
    public static PipelineSpec Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);
        var spec = Parse(File.ReadAllText(path), Path.GetFileName(path));
        spec.BaseDirectory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        spec.Validate(Path.GetFileName(path));
        return spec;
    }

    /// <summary>Parses pipeline text without resolving or checking files (see <see cref="Load"/>).</summary>
    public static PipelineSpec Parse(string text, string fileName = "pipeline")
    {
        var deserializer = new DeserializerBuilder()
            .WithNamingConvention(UnderscoredNamingConvention.Instance)
            .WithCaseInsensitivePropertyMatching()
            .Build();
        try
        {
            return deserializer.Deserialize<PipelineSpec?>(text) ?? throw new PipelineFormatException($"{fileName}: the file is empty");
        }
        catch (YamlException e)
        {
            // YamlDotNet wraps the real cause (unknown key, bad number) in inner exceptions; the innermost says what.
            var cause = e;
            while (cause.InnerException is YamlException inner) cause = inner;
            var detail = cause.InnerException?.Message ?? cause.Message;
            throw new PipelineFormatException($"{fileName}: line {e.Start.Line}, column {e.Start.Column}: {detail}", e);
        }
    }

    /// <summary>Checks everything a run needs before the first step starts, so a typo fails in a second, not after an hour.</summary>
    public void Validate(string fileName = "pipeline")
    {
        void Fail(string what) => throw new PipelineFormatException($"{fileName}: {what}");
        if (string.IsNullOrWhiteSpace(Source)) Fail("'source' is required: a Hugging Face folder or a GGUF model");
        var source = Resolve(Source);
        if (!Directory.Exists(source) && !File.Exists(source)) Fail($"source '{Source}' does not exist");
        if (BaseType.ToLowerInvariant() is not ("f32" or "f16" or "bf16")) Fail($"base_type must be f32, f16 or bf16, not '{BaseType}'");
        if (Threads < 0) Fail($"threads must be 0 (default) or more, not {Threads}");
        if (string.IsNullOrWhiteSpace(Output)) Fail("'output' must name a folder");
        foreach (var c in Calibration)
            if (!File.Exists(Resolve(c))) Fail($"calibration file '{c}' does not exist");
        if (Candidates.Any(c => c.UsesImatrix) && Calibration.Count == 0)
            Fail("a candidate uses the importance matrix but 'calibration' names no text (set imatrix: false on the candidate or add calibration files)");
        Imatrix.Validate(Fail);
        Evaluation.Validate(Fail, p => File.Exists(Resolve(p)));
        if (Candidates.Count == 0) Fail("'candidates' is empty: name at least one quantization");
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var c in Candidates)
        {
            c.Validate(Fail, p => File.Exists(Resolve(p)));
            if (!names.Add(c.Name)) Fail($"two candidates are named '{c.Name}'");
        }
    }
}

/// <summary>How the importance matrix is collected (llama-imatrix's options).</summary>
public sealed class ImatrixSettings
{
    /// <summary>Tokens per chunk (<c>-c</c>).</summary>
    public int Context { get; set; } = 512;

    /// <summary>At most this many chunks (<c>--chunks</c>; 0 = all).</summary>
    public int Chunks { get; set; }

    /// <summary>Also record the output tensor's input (<c>--process-output</c>).</summary>
    public bool ProcessOutput { get; set; }

    /// <summary>Which statistic the heatmap shows (a column of <c>squeeze stats</c>).</summary>
    public string Heatmap { get; set; } = "sum2";

    internal void Validate(Action<string> fail)
    {
        if (Context < 8) fail($"imatrix.context must be at least 8, not {Context}");
        if (Chunks < 0) fail($"imatrix.chunks must be 0 (all) or more, not {Chunks}");
    }
}

/// <summary>How every model is measured.</summary>
public sealed class EvaluationSettings
{
    /// <summary>Text for perplexity and KL divergence (e.g. wikitext-2's test set).</summary>
    public string? Text { get; set; }

    /// <summary>Tokens per perplexity chunk (<c>-c</c>).</summary>
    public int Context { get; set; } = 512;

    /// <summary>At most this many chunks (0 = all).</summary>
    public int Chunks { get; set; }

    /// <summary>llama.cpp's HellaSwag file and how many tasks to score (0 = all).</summary>
    public string? Hellaswag { get; set; }
    public int HellaswagTasks { get; set; } = 400;

    /// <summary>llama.cpp's WinoGrande CSV and how many tasks to score (0 = all).</summary>
    public string? Winogrande { get; set; }
    public int WinograndeTasks { get; set; }

    /// <summary>Multiple-choice sets in llama.cpp's binary format (ARC, MMLU, TruthfulQA), each with a name.</summary>
    public List<MultipleChoiceSet> MultipleChoice { get; set; } = [];

    /// <summary>Speed measurement (llama-bench's pp and tg tests); absent = no speed columns.</summary>
    public BenchSettings? Bench { get; set; }

    internal void Validate(Action<string> fail, Func<string, bool> exists)
    {
        if (Text is null) fail("evaluation.text is required: the text perplexity and KL divergence are measured on");
        if (!exists(Text!)) fail($"evaluation.text '{Text}' does not exist");
        if (Context < 16) fail($"evaluation.context must be at least 16, not {Context}");
        if (Chunks < 0 || HellaswagTasks < 0 || WinograndeTasks < 0) fail("evaluation chunk and task counts must be 0 (all) or more");
        if (Hellaswag is not null && !exists(Hellaswag)) fail($"evaluation.hellaswag '{Hellaswag}' does not exist");
        if (Winogrande is not null && !exists(Winogrande)) fail($"evaluation.winogrande '{Winogrande}' does not exist");
        foreach (var set in MultipleChoice)
        {
            if (string.IsNullOrWhiteSpace(set.Name) || !IsSafeName(set.Name)) fail($"evaluation.multiple_choice: '{set.Name}' is not a usable name (letters, digits, - _ .)");
            if (!exists(set.File)) fail($"evaluation.multiple_choice '{set.Name}': file '{set.File}' does not exist");
            if (set.Tasks < 0) fail($"evaluation.multiple_choice '{set.Name}': tasks must be 0 (all) or more");
        }
        Bench?.Validate(fail);
    }

    internal static bool IsSafeName(string name) =>
        name.Length <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && name[0] != '.';
}

/// <summary>A named multiple-choice task file (llama.cpp's binary format).</summary>
public sealed class MultipleChoiceSet
{
    public string Name { get; set; } = "";
    public string File { get; set; } = "";
    public int Tasks { get; set; }
}

/// <summary>llama-bench's settings.</summary>
public sealed class BenchSettings
{
    public int Prompt { get; set; } = 512;
    public int Generate { get; set; } = 128;
    public int Repetitions { get; set; } = 3;

    internal void Validate(Action<string> fail)
    {
        if (Prompt < 0 || Generate < 0 || Prompt + Generate == 0) fail("evaluation.bench: prompt and generate must be 0 or more, not both 0");
        if (Repetitions < 1) fail($"evaluation.bench.repetitions must be at least 1, not {Repetitions}");
    }
}

/// <summary>
/// One quantization to make: a llama.cpp file type (a preset such as Q4_K_M), optionally with
/// <c>--tensor-type</c> rule lines and rule files, or with <see cref="Pure"/> to apply the rules over a single type.
/// </summary>
public sealed class CandidateSpec
{
    /// <summary>The name used for its files and in the report (defaults to the type).</summary>
    public string Name { get; set; } = "";

    /// <summary>The llama.cpp file type (Q4_K_M, IQ4_XS, Q8_0, ...).</summary>
    public string Type { get; set; } = "";

    /// <summary>llama-quantize's <c>--pure</c>: no preset mixture; the rules alone decide, the type is the default.</summary>
    public bool Pure { get; set; }

    /// <summary><c>--tensor-type</c> lines, <c>PATTERN=TYPE</c>, first match wins.</summary>
    public List<string> Rules { get; set; } = [];

    /// <summary><c>--tensor-type-file</c> files.</summary>
    public List<string> RuleFiles { get; set; } = [];

    /// <summary>Whether the importance matrix is used (default true).</summary>
    public bool Imatrix { get; set; } = true;

    /// <summary><c>--output-tensor-type</c> and <c>--token-embedding-type</c>.</summary>
    public string? OutputTensorType { get; set; }
    public string? TokenEmbeddingType { get; set; }

    [YamlIgnore] public bool UsesImatrix => Imatrix;

    internal void Validate(Action<string> fail, Func<string, bool> exists)
    {
        if (string.IsNullOrWhiteSpace(Type)) fail($"candidate '{Name}': 'type' is required (a llama.cpp file type such as Q4_K_M)");
        if (string.IsNullOrWhiteSpace(Name)) Name = Type;
        if (!EvaluationSettings.IsSafeName(Name)) fail($"candidate '{Name}': the name must be letters, digits, - _ . (it names files)");
        foreach (var rule in Rules)
        {
            int eq = rule.LastIndexOf('=');
            if (eq <= 0 || eq == rule.Length - 1) fail($"candidate '{Name}': rule '{rule}' is not PATTERN=TYPE");
        }
        foreach (var f in RuleFiles)
            if (!exists(f)) fail($"candidate '{Name}': rule file '{f}' does not exist");
    }
}
