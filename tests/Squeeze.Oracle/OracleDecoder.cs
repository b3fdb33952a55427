using Squeeze.Evaluation;
using Squeeze.Models;

namespace Squeeze.Oracle;

/// <summary>llama.cpp behind Squeeze's <see cref="IBatchDecoder"/>: the evaluation code run on llama.cpp's logits.</summary>
public sealed class OracleDecoder : IBatchDecoder, IDisposable
{
    /// <summary>A llama.cpp context of <paramref name="cells"/> cells split into <paramref name="sequences"/> sequences.</summary>
    public OracleDecoder(string path, int cells, int batchSize, int sequences = 1, int threads = 2)
    {
        Model = new OracleModel(path, cells, batchSize, threads, sequences: sequences);
    }

    public OracleModel Model { get; }
    public int VocabSize => Model.VocabSize;
    public void ClearCache() => Model.ClearCache();
    public float[] Decode(ReadOnlySpan<BatchToken> batch) => Model.Decode(batch);
    public void Dispose() => Model.Dispose();
}
