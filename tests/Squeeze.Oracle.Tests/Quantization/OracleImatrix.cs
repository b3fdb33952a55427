using Squeeze.Gguf;
using Squeeze.Quantization;
using Squeeze.Tests;

namespace Squeeze.Oracle.Tests.Quantization;

/// <summary>A random imatrix file for a model, and what llama-quantize would pass to <c>llama_model_quantize</c> for it.</summary>
/// <param name="Path">The file (GGUF or legacy .dat).</param>
/// <param name="Weights">The normalized weights llama-quantize computes from the file (passed to the oracle).</param>
/// <param name="Overrides">The quantize.imatrix.* metadata llama-quantize adds.</param>
public sealed record OracleImatrix(string Path, Dictionary<string, float[]> Weights, List<LlamaQuantize.KvOverride> Overrides)
{
    /// <summary>
    /// An imatrix for every quantizable tensor of <paramref name="modelPath"/> (the token embeddings too, so that types
    /// ggml cannot quantize without weights work there), in llama.cpp's GGUF format or legacy format. Weights are
    /// log-uniform with a few columns 30x larger; in the GGUF format some matrices have a zero count (weights 1) and
    /// some fractional counts.
    /// </summary>
    public static OracleImatrix Write(string modelPath, string path, bool gguf, int seed)
    {
        var rng = new Random(seed);
        var weights = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var legacy = new List<ImatrixFiles.LegacyEntry>();
        var entries = new List<ImatrixFiles.GgufEntry>();
        using (var f = GgufFile.Open(modelPath))
        {
            int k = 0;
            foreach (var t in f.Tensors.Where(t => QuantizableTensors.Check(t).Allowed))
            {
                int ne0 = (int)t.Shape[0], nMat = t.Shape.Count > 2 ? (int)t.Shape[2] : 1;
                var mean = new float[ne0 * nMat];
                for (int i = 0; i < mean.Length; i++) mean[i] = (float)(0.5 * Math.Exp(2 * (rng.NextDouble() - 0.5)) * (i % 37 == 0 ? 30 : 1));
                if (gguf)
                {
                    var counts = new float[nMat];
                    for (int j = 0; j < nMat; j++) counts[j] = (k++ % 5 == 2 && nMat > 1) ? 0f : 4096f + k + (j % 2 == 1 ? 0.5f : 0f);
                    var sums = new float[mean.Length];
                    var w = new float[mean.Length];
                    for (int j = 0; j < nMat; j++)
                    {
                        float c = (float)Math.Round(counts[j], MidpointRounding.AwayFromZero);
                        for (int i = 0; i < ne0; i++)
                        {
                            sums[j * ne0 + i] = mean[j * ne0 + i] * counts[j];
                            w[j * ne0 + i] = c > 0 ? sums[j * ne0 + i] / c : 1f;
                        }
                    }
                    entries.Add(new(t.Name, sums, counts));
                    weights[t.Name] = w;
                }
                else
                {
                    const int ncall = 10;
                    var data = mean.Select(m => m * ncall).ToArray();
                    legacy.Add(new(t.Name, ncall, data));
                    weights[t.Name] = data.Select(d => d / (float)ncall).ToArray();
                }
            }
        }
        string dataset = $"{System.IO.Path.GetFileNameWithoutExtension(modelPath)}-calibration.txt";
        const int chunks = 42;
        if (gguf) ImatrixFiles.WriteGguf(path, entries, [dataset, "second.txt"], chunks, 512);
        else File.WriteAllBytes(path, ImatrixFiles.LegacyBytes(legacy, chunks, dataset));
        var overrides = new List<LlamaQuantize.KvOverride>
        {
            new(GgufKeys.Quantize.ImatrixFile, path),
            new(GgufKeys.Quantize.ImatrixDataset, dataset),
            new(GgufKeys.Quantize.ImatrixEntriesCount, Int: weights.Count),
            new(GgufKeys.Quantize.ImatrixChunksCount, Int: chunks),
        };
        return new OracleImatrix(path, weights, overrides);
    }
}
