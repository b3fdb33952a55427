using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Tests.Gguf;

/// <summary>Small hand-made GGUF images that tests corrupt one field at a time.</summary>
public static class GgufSamples
{
    /// <summary>Tensors of <see cref="Valid"/>: name, type, shape, offset in the data section, bytes.</summary>
    public static readonly (string Name, GgmlType Type, long[] Shape, long Offset, int Bytes)[] ValidTensors =
    [
        ("token_embd.weight", GgmlType.F32, [8, 2], 0, 64),
        ("blk.0.attn_q.weight", GgmlType.Q8_0, [32, 2], 64, 68),
        ("output_norm.weight", GgmlType.F16, [4], 160, 8),
    ];

    /// <summary>
    /// A valid GGUF v3 file: six metadata values (string, u32 alignment 32, bool, i32 array, string array, f32) and
    /// three tensors (F32, Q8_0, F16) laid out as llama.cpp lays them out, with seeded data bytes.
    /// </summary>
    public static GgufImage Valid()
    {
        var b = new GgufImage().Header(tensorCount: 3, kvCount: 6);
        b.KvString(GgufKeys.General.Architecture, "llama");
        b.KvU32(GgufKeys.General.Alignment, 32);
        b.Kv("test.flag", GgufValueType.Bool, v => v.U8(1));
        b.Kv("test.list", GgufValueType.Array, v => v.Array((uint)GgufValueType.Int32, 3, a => a.U32(1).U32(2).U32(unchecked((uint)-3)), "kv[3]"));
        b.Kv("test.names", GgufValueType.Array, v => v.Array((uint)GgufValueType.String, 2, a => a.Str("a").Str("bc"), "kv[4]"));
        b.Kv("test.f", GgufValueType.Float32, v => v.F32(0.5f));
        foreach (var t in ValidTensors) b.TensorInfo(t.Name, t.Shape, t.Type, (ulong)t.Offset);
        b.Pad(32, "data.pad");
        long dataStart = b.Length;
        var rng = new Random(7);
        for (int i = 0; i < ValidTensors.Length; i++)
        {
            var t = ValidTensors[i];
            b.Pad(32); // no-op for the first tensor: the data section is already aligned
            if (b.Length - dataStart != t.Offset) throw new InvalidOperationException("sample layout is inconsistent");
            var data = new byte[t.Bytes];
            rng.NextBytes(data);
            b.Raw(data, $"data[{i}]");
        }
        b.Pad(32, "data.end_pad");
        return b;
    }
}
