using System.Runtime.InteropServices;
using Squeeze.Gguf;
using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Tests;

/// <summary>
/// Random-weight models llama.cpp can load (architecture metadata, a "none" vocabulary with a size), written with
/// Squeeze's GGUF writer. Tensors are written in a converter's order (embeddings, blocks, head), not llama.cpp's
/// sorted order, so that writers which reorder are exercised.
/// </summary>
public static class SyntheticModels
{
    /// <param name="Arch">llama or qwen3.</param>
    /// <param name="WeightType">F32, F16 or BF16 for 2-D weights (norms stay F32).</param>
    /// <param name="NExpert">Experts per layer (0: a dense FFN); MoE layers have a router and 3-D expert weights.</param>
    public sealed record Spec(string Arch, int NEmbd, int NFf, int NLayer, int NHead, int NHeadKv, int HeadDim, int NVocab, GgmlType WeightType,
        int NExpert = 0, int NExpertUsed = 0)
    {
        public override string ToString() => $"{Arch}-{NEmbd}x{NFf}{(NExpert > 0 ? $"x{NExpert}e" : "")}-{WeightType}";
    }

    /// <summary>llama: rows of 256 and 640 (ffn_down: 640 fits 32-blocks only, so k-quants fall back).</summary>
    public static Spec Llama { get; } = new("llama", 256, 640, 2, 4, 2, 64, 320, GgmlType.F32);

    /// <summary>qwen3 in F16: rows of 256, 512 (attn_output) and 4096 (ffn_down); per-head Q/K norms.</summary>
    public static Spec Qwen3 { get; } = new("qwen3", 256, 4096, 1, 4, 2, 128, 288, GgmlType.F16);

    /// <summary>llama with 4 experts (2 used) in BF16: 3-D expert weights, whose imatrix entries hold one vector per expert.</summary>
    public static Spec LlamaMoe { get; } = new("llama", 256, 256, 1, 4, 2, 64, 300, GgmlType.BF16, NExpert: 4, NExpertUsed: 2);

    /// <summary>The weight tensors (name, shape) of <paramref name="s"/> in the order they are written.</summary>
    public static IEnumerable<(string Name, long[] Shape)> Tensors(Spec s)
    {
        int q = s.NHead * s.HeadDim, kv = s.NHeadKv * s.HeadDim;
        yield return ("token_embd.weight", [s.NEmbd, s.NVocab]);
        for (int i = 0; i < s.NLayer; i++)
        {
            string b = $"blk.{i}.";
            yield return (b + "attn_norm.weight", [s.NEmbd]);
            yield return (b + "attn_q.weight", [s.NEmbd, q]);
            yield return (b + "attn_k.weight", [s.NEmbd, kv]);
            yield return (b + "attn_v.weight", [s.NEmbd, kv]);
            if (s.Arch == "qwen3")
            {
                yield return (b + "attn_q_norm.weight", [s.HeadDim]);
                yield return (b + "attn_k_norm.weight", [s.HeadDim]);
            }
            yield return (b + "attn_output.weight", [q, s.NEmbd]);
            yield return (b + "ffn_norm.weight", [s.NEmbd]);
            if (s.NExpert > 0)
            {
                yield return (b + "ffn_gate_inp.weight", [s.NEmbd, s.NExpert]);
                yield return (b + "ffn_gate_exps.weight", [s.NEmbd, s.NFf, s.NExpert]);
                yield return (b + "ffn_up_exps.weight", [s.NEmbd, s.NFf, s.NExpert]);
                yield return (b + "ffn_down_exps.weight", [s.NFf, s.NEmbd, s.NExpert]);
                continue;
            }
            yield return (b + "ffn_gate.weight", [s.NEmbd, s.NFf]);
            yield return (b + "ffn_up.weight", [s.NEmbd, s.NFf]);
            yield return (b + "ffn_down.weight", [s.NFf, s.NEmbd]);
        }
        yield return ("output_norm.weight", [s.NEmbd]);
        yield return ("output.weight", [s.NEmbd, s.NVocab]);
    }

    /// <summary>
    /// Writes the model. Weights are gaussian (σ 0.02) with a few columns 20x larger, as trained models have;
    /// <paramref name="tamper"/> may change any tensor's floats before they are stored (e.g. to plant a NaN).
    /// </summary>
    public static void Write(string path, Spec s, int seed = 1, Action<string, float[]>? tamper = null)
    {
        var w = new GgufWriter();
        string a = s.Arch;
        w.Set(GgufKeys.General.Architecture, GgufValue.String(a));
        w.Set(GgufKeys.General.Name, GgufValue.String($"synthetic {s}"));
        w.Set(GgufKeys.General.FileType, GgufValue.UInt32(s.WeightType switch { GgmlType.F16 => 1u, GgmlType.BF16 => 32u, _ => 0u }));
        w.Set(GgufKeys.Arch.ContextLength(a), GgufValue.UInt32(256));
        w.Set(GgufKeys.Arch.EmbeddingLength(a), GgufValue.UInt32((uint)s.NEmbd));
        w.Set(GgufKeys.Arch.BlockCount(a), GgufValue.UInt32((uint)s.NLayer));
        w.Set(GgufKeys.Arch.FeedForwardLength(a), GgufValue.UInt32((uint)s.NFf));
        w.Set(GgufKeys.Arch.AttentionHeadCount(a), GgufValue.UInt32((uint)s.NHead));
        w.Set(GgufKeys.Arch.AttentionHeadCountKv(a), GgufValue.UInt32((uint)s.NHeadKv));
        w.Set(GgufKeys.Arch.AttentionKeyLength(a), GgufValue.UInt32((uint)s.HeadDim));
        w.Set(GgufKeys.Arch.AttentionValueLength(a), GgufValue.UInt32((uint)s.HeadDim));
        w.Set(GgufKeys.Arch.RopeDimensionCount(a), GgufValue.UInt32((uint)s.HeadDim));
        w.Set(GgufKeys.Arch.RopeFreqBase(a), GgufValue.Float32(10000f));
        w.Set(GgufKeys.Arch.AttentionLayerNormRmsEpsilon(a), GgufValue.Float32(1e-6f));
        w.Set(GgufKeys.Arch.VocabSize(a), GgufValue.UInt32((uint)s.NVocab));
        if (s.NExpert > 0)
        {
            w.Set(GgufKeys.Arch.ExpertCount(a), GgufValue.UInt32((uint)s.NExpert));
            w.Set(GgufKeys.Arch.ExpertUsedCount(a), GgufValue.UInt32((uint)s.NExpertUsed));
        }
        w.Set(GgufKeys.Tokenizer.Model, GgufValue.String("none"));

        var rng = new Random(seed);
        foreach (var (name, shape) in Tensors(s))
        {
            long count = shape.Aggregate(1L, (x, y) => x * y);
            var data = new float[count];
            bool norm = shape.Length == 1;
            int hot = rng.Next((int)shape[0]);
            for (long i = 0; i < count; i++)
            {
                double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                data[i] = norm ? (float)(1 + 0.1 * g) : (float)(0.02 * g * (i % shape[0] == hot ? 20 : 1));
            }
            tamper?.Invoke(name, data);
            // Norms and the router stay F32, as converters store them.
            var type = norm || name.Contains("ffn_gate_inp", StringComparison.Ordinal) ? GgmlType.F32 : s.WeightType;
            w.AddTensor(name, type, shape, Encode(type, data));
        }
        w.WriteTo(path);
    }

    /// <summary>The bytes of <paramref name="data"/> stored as F32, F16 or BF16.</summary>
    public static byte[] Encode(GgmlType type, float[] data)
    {
        switch (type)
        {
            case GgmlType.F32: return MemoryMarshal.AsBytes(data.AsSpan()).ToArray();
            case GgmlType.F16:
            case GgmlType.BF16:
                var h = new ushort[data.Length];
                for (int i = 0; i < h.Length; i++) h[i] = type == GgmlType.F16 ? Fp16.FromFloat(data[i]) : Bf16.FromFloat(data[i]);
                return MemoryMarshal.AsBytes(h.AsSpan()).ToArray();
            default: throw new ArgumentException($"cannot store {type}");
        }
    }
}

/// <summary>Writes imatrix files in llama.cpp's two formats, by hand, for the readers' tests.</summary>
public static class ImatrixFiles
{
    /// <summary>One legacy entry: its name, call count and stored values.</summary>
    public sealed record LegacyEntry(string Name, int NCall, float[] Data);

    /// <summary>One GGUF entry: raw Σx² (<c>ne0 * nMat</c>) and one count per matrix.</summary>
    public sealed record GgufEntry(string Name, float[] InSum2, float[] Counts);

    /// <summary>The legacy .dat layout (reference.md §1.4); the trailer is written when <paramref name="lastChunk"/> is given.</summary>
    public static byte[] LegacyBytes(IEnumerable<LegacyEntry> entries, int? lastChunk = null, string? dataset = null)
    {
        var ms = new MemoryStream();
        using var bw = new BinaryWriter(ms);
        var list = entries.ToList();
        bw.Write(list.Count);
        foreach (var e in list)
        {
            var name = System.Text.Encoding.UTF8.GetBytes(e.Name);
            bw.Write(name.Length);
            bw.Write(name);
            bw.Write(e.NCall);
            bw.Write(e.Data.Length);
            foreach (var f in e.Data) bw.Write(f);
        }
        if (lastChunk is int lc)
        {
            bw.Write(lc);
            var d = System.Text.Encoding.UTF8.GetBytes(dataset ?? "");
            bw.Write(d.Length);
            bw.Write(d);
        }
        bw.Flush();
        return ms.ToArray();
    }

    /// <summary>The GGUF imatrix layout (reference.md §1.5); metadata keys are written when <paramref name="metadata"/> is set.</summary>
    public static void WriteGguf(string path, IEnumerable<GgufEntry> entries, string[] datasets, uint chunkCount, uint chunkSize, bool metadata = true)
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Type, GgufValue.String("imatrix"));
        if (metadata)
        {
            w.Set(GgufKeys.Imatrix.Datasets, GgufValue.Strings(datasets));
            w.Set(GgufKeys.Imatrix.ChunkCount, GgufValue.UInt32(chunkCount));
            w.Set(GgufKeys.Imatrix.ChunkSize, GgufValue.UInt32(chunkSize));
        }
        foreach (var e in entries.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            int nMat = e.Counts.Length;
            w.AddTensor(e.Name + ".in_sum2", GgmlType.F32, [e.InSum2.Length / nMat, nMat], MemoryMarshal.AsBytes(e.InSum2.AsSpan()).ToArray());
            w.AddTensor(e.Name + ".counts", GgmlType.F32, [1, nMat], MemoryMarshal.AsBytes(e.Counts.AsSpan()).ToArray());
        }
        w.WriteTo(path);
    }
}
