using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Squeeze.Numerics;

namespace Squeeze.Tests;

/// <summary>
/// Writes synthetic Hugging Face checkpoints (config.json, safetensors shards + index, tokenizer files) for the
/// converter's tests: random weights in the checkpoint's dtype, shapes of the architecture's config.
/// </summary>
public static class HfCheckpoints
{
    /// <summary>The shape of a synthetic checkpoint.</summary>
    /// <param name="Architecture">LlamaForCausalLM, Qwen2ForCausalLM or Qwen3ForCausalLM.</param>
    /// <param name="DType">"BF16", "F16" or "F32".</param>
    /// <param name="Shards">Number of safetensors files (1: model.safetensors without an index).</param>
    /// <param name="ZeroBias">Qwen2's Q/K/V biases are zero (so that it computes what a Llama with the same weights does).</param>
    public sealed record Spec(string Architecture, int Hidden = 64, int Heads = 4, int KvHeads = 2, int HeadDim = 16, int FeedForward = 128,
        int Layers = 2, int VocabSize = 151936, string DType = "BF16", int Shards = 2, bool Tied = false, int Seed = 1, bool ZeroBias = false);

    /// <summary>(name, PyTorch shape) of every tensor, in the order a model's state dict lists them.</summary>
    public static List<(string Name, long[] Shape)> Tensors(Spec s)
    {
        int q = s.Heads * s.HeadDim, kv = s.KvHeads * s.HeadDim;
        var list = new List<(string, long[])> { ("model.embed_tokens.weight", [s.VocabSize, s.Hidden]) };
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            list.Add((p + "input_layernorm.weight", [s.Hidden]));
            list.Add((p + "self_attn.q_proj.weight", [q, s.Hidden]));
            list.Add((p + "self_attn.k_proj.weight", [kv, s.Hidden]));
            list.Add((p + "self_attn.v_proj.weight", [kv, s.Hidden]));
            if (s.Architecture == "Qwen2ForCausalLM")
            {
                list.Add((p + "self_attn.q_proj.bias", [q]));
                list.Add((p + "self_attn.k_proj.bias", [kv]));
                list.Add((p + "self_attn.v_proj.bias", [kv]));
            }
            if (s.Architecture == "Qwen3ForCausalLM")
            {
                list.Add((p + "self_attn.q_norm.weight", [s.HeadDim]));
                list.Add((p + "self_attn.k_norm.weight", [s.HeadDim]));
            }
            list.Add((p + "self_attn.o_proj.weight", [s.Hidden, q]));
            list.Add((p + "post_attention_layernorm.weight", [s.Hidden]));
            list.Add((p + "mlp.gate_proj.weight", [s.FeedForward, s.Hidden]));
            list.Add((p + "mlp.up_proj.weight", [s.FeedForward, s.Hidden]));
            list.Add((p + "mlp.down_proj.weight", [s.Hidden, s.FeedForward]));
        }
        list.Add(("model.norm.weight", [s.Hidden]));
        if (!s.Tied) list.Add(("lm_head.weight", [s.VocabSize, s.Hidden]));
        return list;
    }

    /// <summary>Random values for a tensor: embeddings and the head of unit scale, layers of 1/sqrt(fan-in), norms near 1.</summary>
    public static float[] Values(string name, long[] shape, int seed)
    {
        var rng = new Random(seed * 7919 + StableHash(name));
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var x = new float[n];
        bool norm = name.Contains("norm", StringComparison.Ordinal);
        bool bias = name.EndsWith(".bias", StringComparison.Ordinal);
        bool unit = name.Contains("embed_tokens", StringComparison.Ordinal) || name.Contains("lm_head", StringComparison.Ordinal);
        float std = norm || bias ? 0.1f : unit ? 1f : 1f / MathF.Sqrt(shape[^1]);
        for (long i = 0; i < n; i++)
        {
            double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            x[i] = (norm ? 1f : 0f) + std * (float)g;
        }
        return x;
    }

    private static int StableHash(string s)
    {
        unchecked
        {
            int h = 17;
            foreach (char c in s) h = h * 31 + c;
            return h;
        }
    }

    /// <summary>The config.json of <paramref name="s"/> (the Qwen3 / Qwen2 / Llama config shapes).</summary>
    public static JsonObject Config(Spec s)
    {
        var c = new JsonObject
        {
            ["architectures"] = new JsonArray(s.Architecture),
            ["attention_dropout"] = 0.0,
            ["bos_token_id"] = 151643,
            ["eos_token_id"] = 151645,
            ["hidden_act"] = "silu",
            ["hidden_size"] = s.Hidden,
            ["initializer_range"] = 0.02,
            ["intermediate_size"] = s.FeedForward,
            ["max_position_embeddings"] = 4096,
            ["model_type"] = s.Architecture switch { "LlamaForCausalLM" => "llama", "Qwen2ForCausalLM" => "qwen2", _ => "qwen3" },
            ["num_attention_heads"] = s.Heads,
            ["num_hidden_layers"] = s.Layers,
            ["num_key_value_heads"] = s.KvHeads,
            ["rms_norm_eps"] = 1e-06,
            ["rope_scaling"] = null,
            ["rope_theta"] = 1000000,
            ["tie_word_embeddings"] = s.Tied,
            ["torch_dtype"] = s.DType switch { "BF16" => "bfloat16", "F16" => "float16", _ => "float32" },
            ["transformers_version"] = "4.51.0",
            ["use_cache"] = true,
            ["vocab_size"] = s.VocabSize,
        };
        if (s.Architecture == "Qwen3ForCausalLM")
        {
            c["head_dim"] = s.HeadDim;
            c["attention_bias"] = false;
        }
        return c;
    }

    /// <summary>Writes the checkpoint into <paramref name="folder"/> (created); tokenizer files come from the shared data.</summary>
    public static void Write(string folder, Spec s, string? tokenizerFolder = null, Action<string, float[]>? tamper = null)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), Config(s).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        WriteWeights(folder, s, tamper);
        if (tokenizerFolder is not null) CopyTokenizer(tokenizerFolder, folder);
    }

    /// <summary>Writes the weights: <see cref="Spec.Shards"/> files, split evenly by tensor count, with an index when sharded.</summary>
    public static void WriteWeights(string folder, Spec s, Action<string, float[]>? tamper = null)
    {
        var tensors = Tensors(s);
        int shards = s.Shards;
        var map = new JsonObject();
        int perShard = (tensors.Count + shards - 1) / shards;
        for (int k = 0; k < shards; k++)
        {
            string file = shards == 1 ? "model.safetensors" : $"model-{k + 1:D5}-of-{shards:D5}.safetensors";
            var part = tensors.Skip(k * perShard).Take(perShard)
                .Select(t =>
                {
                    var v = Values(t.Name, t.Shape, s.Seed);
                    if (s.ZeroBias && t.Name.EndsWith(".bias", StringComparison.Ordinal)) Array.Clear(v);
                    tamper?.Invoke(t.Name, v);
                    return (t.Name, s.DType, t.Shape, Encode(s.DType, v));
                }).ToList();
            WriteSafetensors(Path.Combine(folder, file), part);
            foreach (var t in part) map[t.Name] = file;
        }
        if (shards > 1)
        {
            var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = 0 }, ["weight_map"] = map };
            File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), index.ToJsonString());
        }
    }

    /// <summary>The Qwen3 tokenizer files (tokenizer.json gunzipped, tokenizer_config.json) copied into <paramref name="folder"/>.</summary>
    public static void CopyTokenizer(string tokenizerFolder, string folder)
    {
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(tokenizerFolder, "tokenizer.json.gz")), CompressionMode.Decompress))
        using (var output = File.Create(Path.Combine(folder, "tokenizer.json")))
            gz.CopyTo(output);
        File.Copy(Path.Combine(tokenizerFolder, "tokenizer_config.json"), Path.Combine(folder, "tokenizer_config.json"), overwrite: true);
    }

    /// <summary>Floats stored as a safetensors dtype.</summary>
    public static byte[] Encode(string dtype, float[] values)
    {
        switch (dtype)
        {
            case "F32":
                var f = new byte[values.Length * 4];
                Buffer.BlockCopy(values, 0, f, 0, f.Length);
                return f;
            case "F16":
            case "BF16":
                var h = new byte[values.Length * 2];
                for (int i = 0; i < values.Length; i++)
                {
                    ushort u = dtype == "F16" ? Fp16.FromFloat(values[i]) : Bf16.FromFloat(values[i]);
                    h[2 * i] = (byte)u;
                    h[2 * i + 1] = (byte)(u >> 8);
                }
                return h;
            default: throw new ArgumentException(dtype);
        }
    }

    /// <summary>A safetensors file as the reference writer lays it out: header padded with spaces to 8 bytes, data in order.</summary>
    public static void WriteSafetensors(string path, IReadOnlyList<(string Name, string DType, long[] Shape, byte[] Data)> tensors,
        Func<string, string>? editHeader = null)
    {
        File.WriteAllBytes(path, SafetensorsBytes(tensors, editHeader));
    }

    public static byte[] SafetensorsBytes(IReadOnlyList<(string Name, string DType, long[] Shape, byte[] Data)> tensors, Func<string, string>? editHeader = null)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var t in tensors)
        {
            header[t.Name] = new JsonObject
            {
                ["dtype"] = t.DType,
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + t.Data.Length),
            };
            offset += t.Data.Length;
        }
        string json = header.ToJsonString();
        if (editHeader is not null) json = editHeader(json);
        var bytes = Encoding.UTF8.GetBytes(json).ToList();
        while (bytes.Count % 8 != 0) bytes.Add((byte)' ');
        var ms = new MemoryStream();
        ms.Write(BitConverter.GetBytes((ulong)bytes.Count));
        ms.Write(bytes.ToArray());
        foreach (var t in tensors) ms.Write(t.Data);
        return ms.ToArray();
    }
}
