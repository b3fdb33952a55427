using System.Text;
using Squeeze.Gguf;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Quantization;

/// <summary>Compares two GGUF files and lists every difference: metadata (keys, order, types, values), tensor infos, tensor bytes.</summary>
public static class GgufAssert
{
    /// <param name="expectedPath">llama.cpp's file.</param>
    /// <param name="actualPath">Squeeze's file.</param>
    /// <param name="context">What was done (for the message).</param>
    /// <param name="compareData">Whether tensors' bytes are compared (false: metadata, names, order, types, shapes and offsets only).</param>
    public static void SameFile(string expectedPath, string actualPath, string context, bool compareData = true)
    {
        var diffs = new List<string>();
        using (var e = GgufFile.Open(expectedPath))
        using (var a = GgufFile.Open(actualPath))
        {
            if (e.Version != a.Version) diffs.Add($"version: llama.cpp {e.Version}, squeeze {a.Version}");
            var ek = e.Metadata.Select(kv => kv.Key).ToList();
            var ak = a.Metadata.Select(kv => kv.Key).ToList();
            foreach (var k in ek.Except(ak)) diffs.Add($"metadata '{k}': only in llama.cpp's file ({Show(e[k])})");
            foreach (var k in ak.Except(ek)) diffs.Add($"metadata '{k}': only in squeeze's file ({Show(a[k])})");
            foreach (var k in ek.Intersect(ak))
                if (!e[k].Equals(a[k])) diffs.Add($"metadata '{k}': llama.cpp {Show(e[k])}, squeeze {Show(a[k])}");
            var common = ek.Intersect(ak).ToList();
            if (!common.SequenceEqual(ak.Intersect(ek)))
                diffs.Add($"metadata order: llama.cpp [{string.Join(", ", ek)}], squeeze [{string.Join(", ", ak)}]");

            var en = e.Tensors.Select(t => t.Name).ToList();
            var an = a.Tensors.Select(t => t.Name).ToList();
            foreach (var n in en.Except(an)) diffs.Add($"tensor '{n}': only in llama.cpp's file");
            foreach (var n in an.Except(en)) diffs.Add($"tensor '{n}': only in squeeze's file");
            if (!en.Intersect(an).SequenceEqual(an.Intersect(en)))
                diffs.Add($"tensor order: llama.cpp [{string.Join(", ", en)}], squeeze [{string.Join(", ", an)}]");
            foreach (var et in e.Tensors)
            {
                var at = a.FindTensor(et.Name);
                if (at is null) continue;
                if (et.Type != at.Type) { diffs.Add($"tensor '{et.Name}': type llama.cpp {et.Type.Name()}, squeeze {at.Type.Name()}"); continue; }
                if (!et.Shape.SequenceEqual(at.Shape)) { diffs.Add($"tensor '{et.Name}': shape llama.cpp [{string.Join(", ", et.Shape)}], squeeze [{string.Join(", ", at.Shape)}]"); continue; }
                if (et.Offset != at.Offset) diffs.Add($"tensor '{et.Name}': offset llama.cpp {et.Offset}, squeeze {at.Offset}");
                if (!compareData) continue;
                var eb = e.GetTensorBytes(et);
                var ab = a.GetTensorBytes(at);
                if (!eb.SequenceEqual(ab))
                {
                    int i = 0;
                    while (eb[i] == ab[i]) i++;
                    var traits = GgmlTypes.Get(et.Type);
                    long row = i / et.RowSize, block = i % et.RowSize / traits.TypeSize;
                    int start = (int)(i - i % et.RowSize % traits.TypeSize);
                    int len = Math.Min(traits.TypeSize, eb.Length - start);
                    diffs.Add($"tensor '{et.Name}' ({traits.Name}): bytes differ first at {i} (row {row}, block {block})\n" +
                        $"    llama.cpp: {Convert.ToHexString(eb.Slice(start, len))}\n    squeeze:   {Convert.ToHexString(ab.Slice(start, len))}");
                }
            }
            if (e.DataOffset != a.DataOffset) diffs.Add($"data offset: llama.cpp {e.DataOffset}, squeeze {a.DataOffset}");
        }
        if (diffs.Count == 0 && compareData && !File.ReadAllBytes(expectedPath).AsSpan().SequenceEqual(File.ReadAllBytes(actualPath)))
            diffs.Add("the files differ in bytes not covered above (header, padding)");
        if (diffs.Count > 0)
            Assert.Fail($"{context}: {diffs.Count} difference(s) from llama.cpp:\n  " + string.Join("\n  ", diffs));
    }

    private static string Show(GgufValue v)
    {
        var s = v.ToString();
        if (s.Length > 80) s = s[..80] + "...";
        return $"{v.Type.ShortName()} {s}";
    }
}
