using System.Text;
using Squeeze.Gguf;
using Squeeze.Models;
using Squeeze.Tokenizers;

namespace Squeeze.Oracle;

/// <summary>
/// A small imatrix collector for tests and benchmarks (Squeeze's own collector is built elsewhere): Σx² and the token
/// count of every matrix input, gathered through Squeeze's forward pass (<see cref="IForwardObserver.OnMatMulInput"/>)
/// over chunks of a calibration text, written in llama.cpp's legacy <c>.dat</c> layout (reference.md §1.4) with
/// <c>ncall</c> = chunks and <c>data = Σx²/count·ncall</c>, as llama.cpp's current legacy writer stores it.
/// </summary>
public static class SimpleImatrix
{
    private sealed class Collector : IForwardObserver
    {
        public readonly Dictionary<string, (double[] Sum2, long Count)> Stats = new(StringComparer.Ordinal);

        public void OnMatMulInput(Weight weight, ReadOnlySpan<float> x, int rows)
        {
            int n = weight.Columns;
            if (!Stats.TryGetValue(weight.Name, out var s)) s = (new double[n], 0);
            for (int r = 0; r < rows; r++)
            {
                var row = x.Slice(r * n, n);
                for (int j = 0; j < n; j++) s.Sum2[j] += (double)row[j] * row[j];
            }
            Stats[weight.Name] = (s.Sum2, s.Count + rows);
        }

        public void OnActivation(string name, int layer, ReadOnlySpan<float> x, int rows) { }
    }

    /// <summary>
    /// Collects over up to <paramref name="maxChunks"/> chunks of <paramref name="chunkSize"/> tokens of
    /// <paramref name="text"/> (first token BOS) and writes <paramref name="path"/>. Returns the chunk count.
    /// </summary>
    public static int Collect(string modelPath, string text, string path, string dataset, int chunkSize, int maxChunks, int threads)
    {
        using var model = TransformerModel.Load(modelPath);
        var tokenizer = Tokenizer.FromGguf(model.File);
        var tokens = tokenizer.Encode(Encoding.UTF8.GetBytes(text), addSpecial: false);
        int chunks = Math.Min(maxChunks, tokens.Length / chunkSize);
        if (chunks == 0) throw new ArgumentException("the calibration text is shorter than one chunk");
        var transformer = new Transformer(model, chunkSize, threads);
        var collector = new Collector();
        transformer.Observer = collector;
        for (int c = 0; c < chunks; c++)
        {
            var chunk = tokens.AsSpan(c * chunkSize, chunkSize).ToArray();
            if (tokenizer.AddBos) chunk[0] = tokenizer.Bos;
            transformer.Cache.Clear();
            transformer.Evaluate(chunk, allLogits: false);
        }
        var ms = new MemoryStream();
        using (var bw = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            var names = collector.Stats.Keys.Order(StringComparer.Ordinal).ToList();
            bw.Write(names.Count);
            foreach (var name in names)
            {
                var (sum2, count) = collector.Stats[name];
                var nameBytes = Encoding.UTF8.GetBytes(name);
                bw.Write(nameBytes.Length);
                bw.Write(nameBytes);
                bw.Write(chunks);
                bw.Write(sum2.Length);
                foreach (var s in sum2) bw.Write((float)(s / count * chunks));
            }
            bw.Write(chunks);
            var d = Encoding.UTF8.GetBytes(dataset);
            bw.Write(d.Length);
            bw.Write(d);
        }
        File.WriteAllBytes(path, ms.ToArray());
        return chunks;
    }

    /// <summary>The metadata llama-quantize adds for an imatrix (tools/quantize/quantize.cpp), for <see cref="LlamaQuantize.Run"/>.</summary>
    public static List<LlamaQuantize.KvOverride> Overrides(Squeeze.Imatrix.ImportanceMatrix im)
    {
        var list = new List<LlamaQuantize.KvOverride> { new(GgufKeys.Quantize.ImatrixFile, im.FileName) };
        if (im.Datasets.Count > 0) list.Add(new(GgufKeys.Quantize.ImatrixDataset, im.Datasets[0]));
        list.Add(new(GgufKeys.Quantize.ImatrixEntriesCount, Int: im.EntryCount));
        if (im.ChunkCount > 0) list.Add(new(GgufKeys.Quantize.ImatrixChunksCount, Int: im.ChunkCount));
        return list;
    }

    /// <summary>The normalized weights of every entry, as llama-quantize passes them to <c>llama_model_quantize</c>.</summary>
    public static Dictionary<string, float[]> Weights(Squeeze.Imatrix.ImportanceMatrix im) =>
        im.Names.ToDictionary(n => n, n => im.Find(n)!, StringComparer.Ordinal);
}
