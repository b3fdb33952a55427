using Squeeze.Gguf;

namespace Squeeze.Imatrix;

/// <summary>
/// Where a collection stood when Squeeze saved its imatrix: enough to resume it (<c>squeeze imatrix --resume</c>) and
/// end with the file an uninterrupted run writes. Stored in the GGUF imatrix under Squeeze's own keys (docs/FORMATS.md).
/// </summary>
/// <param name="Dataset">The calibration file's name as given.</param>
/// <param name="DatasetTokens">Tokens the calibration text gave (after skipping chunks): a changed file is refused.</param>
/// <param name="ContextSize">Tokens per chunk.</param>
/// <param name="FirstChunk">Chunks skipped at the start (<c>--chunk</c>).</param>
/// <param name="ChunksDone">Chunks of this dataset already collected.</param>
/// <param name="MergedDatasets">How many of the file's datasets came from <c>--in-file</c> imatrices (the current dataset follows them).</param>
/// <param name="Nll">Σ −log p of the scored tokens so far (perplexity).</param>
/// <param name="Nll2">Σ (−log p)² so far.</param>
/// <param name="PplTokens">Scored tokens so far.</param>
public sealed record ImatrixRunState(string Dataset, long DatasetTokens, int ContextSize, int FirstChunk, int ChunksDone, int MergedDatasets,
    double Nll, double Nll2, long PplTokens)
{
    /// <summary>Metadata keys (Squeeze's own).</summary>
    public static class Keys
    {
        public const string Dataset = "squeeze.imatrix.run.dataset";
        public const string DatasetTokens = "squeeze.imatrix.run.dataset_tokens";
        public const string ContextSize = "squeeze.imatrix.run.context_size";
        public const string FirstChunk = "squeeze.imatrix.run.first_chunk";
        public const string ChunksDone = "squeeze.imatrix.run.chunks_done";
        public const string MergedDatasets = "squeeze.imatrix.run.merged_datasets";
        public const string Nll = "squeeze.imatrix.run.nll_sum";
        public const string Nll2 = "squeeze.imatrix.run.nll2_sum";
        public const string PplTokens = "squeeze.imatrix.run.ppl_tokens";

        internal static readonly string[] All = [Dataset, DatasetTokens, ContextSize, FirstChunk, ChunksDone, MergedDatasets, Nll, Nll2, PplTokens];
    }

    public void WriteTo(GgufWriter w)
    {
        w.Set(Keys.Dataset, GgufValue.String(Dataset));
        w.Set(Keys.DatasetTokens, GgufValue.UInt64((ulong)DatasetTokens));
        w.Set(Keys.ContextSize, GgufValue.UInt32((uint)ContextSize));
        w.Set(Keys.FirstChunk, GgufValue.UInt32((uint)FirstChunk));
        w.Set(Keys.ChunksDone, GgufValue.UInt32((uint)ChunksDone));
        w.Set(Keys.MergedDatasets, GgufValue.UInt32((uint)MergedDatasets));
        w.Set(Keys.Nll, GgufValue.Float64(Nll));
        w.Set(Keys.Nll2, GgufValue.Float64(Nll2));
        w.Set(Keys.PplTokens, GgufValue.UInt64((ulong)PplTokens));
    }

    /// <summary>Reads the keys; null when the file has none.</summary>
    /// <exception cref="ImatrixFormatException">Some are missing or of the wrong type.</exception>
    public static ImatrixRunState? Read(GgufFile file)
    {
        if (!Keys.All.Any(file.ContainsKey)) return null;
        return new ImatrixRunState(
            Get<string>(file, Keys.Dataset, GgufValueType.String),
            Long(file, Keys.DatasetTokens),
            Int(file, Keys.ContextSize), Int(file, Keys.FirstChunk), Int(file, Keys.ChunksDone), Int(file, Keys.MergedDatasets),
            Get<double>(file, Keys.Nll, GgufValueType.Float64), Get<double>(file, Keys.Nll2, GgufValueType.Float64),
            Long(file, Keys.PplTokens));
    }

    private static long Long(GgufFile file, string key)
    {
        ulong v = Get<ulong>(file, key, GgufValueType.UInt64);
        if (v > long.MaxValue) throw new ImatrixFormatException(-1, key, $"at most {long.MaxValue}", v.ToString());
        return (long)v;
    }

    private static int Int(GgufFile file, string key)
    {
        uint v = Get<uint>(file, key, GgufValueType.UInt32);
        if (v > int.MaxValue) throw new ImatrixFormatException(-1, key, $"at most {int.MaxValue}", v.ToString());
        return (int)v;
    }

    private static T Get<T>(GgufFile file, string key, GgufValueType type)
    {
        var v = file.Find(key) ?? throw new ImatrixFormatException(-1, key, "present (the run-state keys come together)", "missing");
        if (v.Type != type || v.Value is not T t) throw new ImatrixFormatException(-1, key, $"type {type.ShortName()}", v.Type.ShortName());
        return t;
    }
}
