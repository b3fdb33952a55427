using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Tests.Gguf;

/// <summary>Synthetic GGUF files built with <see cref="GgufWriter"/>: every value type, extreme values, many tensor types.</summary>
public static class GgufSynthetic
{
    /// <summary>One value of every scalar type, including the extremes and float bit patterns that must survive.</summary>
    public static IEnumerable<(string Key, GgufValue Value)> Scalars()
    {
        yield return ("t.u8", GgufValue.UInt8(byte.MaxValue));
        yield return ("t.i8", GgufValue.Int8(sbyte.MinValue));
        yield return ("t.u16", GgufValue.UInt16(ushort.MaxValue));
        yield return ("t.i16", GgufValue.Int16(short.MinValue));
        yield return ("t.u32", GgufValue.UInt32(uint.MaxValue));
        yield return ("t.i32", GgufValue.Int32(int.MinValue));
        yield return ("t.f32", GgufValue.Float32(-0.0f));
        yield return ("t.f32.nan", GgufValue.Float32(BitConverter.Int32BitsToSingle(0x7FC01234)));
        yield return ("t.f32.inf", GgufValue.Float32(float.NegativeInfinity));
        yield return ("t.f32.subnormal", GgufValue.Float32(float.Epsilon));
        yield return ("t.bool.true", GgufValue.Bool(true));
        yield return ("t.bool.false", GgufValue.Bool(false));
        yield return ("t.str", GgufValue.String("héllo, wörld ✓ 𝄞"));
        yield return ("t.str.empty", GgufValue.String(""));
        yield return ("t.str.nul", GgufValue.String("a\0b"));
        yield return ("t.u64", GgufValue.UInt64(ulong.MaxValue));
        yield return ("t.i64", GgufValue.Int64(long.MinValue));
        yield return ("t.f64", GgufValue.Float64(Math.PI));
        yield return ("t.f64.nan", GgufValue.Float64(BitConverter.Int64BitsToDouble(0x7FF8000000000ABCL)));
    }

    /// <summary>An array of every element type except arrays (empty and non-empty).</summary>
    public static IEnumerable<(string Key, GgufValue Value)> FlatArrays()
    {
        yield return ("a.u8", Arr(GgufValueType.UInt8, new byte[] { 0, 1, 255 }));
        yield return ("a.i8", Arr(GgufValueType.Int8, new sbyte[] { -128, 0, 127 }));
        yield return ("a.u16", Arr(GgufValueType.UInt16, new ushort[] { 0, 65535 }));
        yield return ("a.i16", Arr(GgufValueType.Int16, new short[] { -32768, 32767 }));
        yield return ("a.u32", Arr(GgufValueType.UInt32, new uint[] { 0, uint.MaxValue, 7 }));
        yield return ("a.i32", Arr(GgufValueType.Int32, new int[] { int.MinValue, -1, int.MaxValue }));
        yield return ("a.f32", Arr(GgufValueType.Float32, new float[] { 1.5f, -0.0f, float.NaN, float.MaxValue }));
        yield return ("a.bool", Arr(GgufValueType.Bool, new bool[] { true, false, true }));
        yield return ("a.str", Arr(GgufValueType.String, new string[] { "", "x", "ünïcödé", "a\nb" }));
        yield return ("a.u64", Arr(GgufValueType.UInt64, new ulong[] { ulong.MaxValue, 0 }));
        yield return ("a.i64", Arr(GgufValueType.Int64, new long[] { long.MinValue, long.MaxValue }));
        yield return ("a.f64", Arr(GgufValueType.Float64, new double[] { double.Epsilon, -1e308 }));
        yield return ("a.empty.u32", Arr(GgufValueType.UInt32, System.Array.Empty<uint>()));
        yield return ("a.empty.str", Arr(GgufValueType.String, System.Array.Empty<string>()));
    }

    /// <summary>Arrays of arrays (GGUF allows them; gguf.cpp does not read them).</summary>
    public static IEnumerable<(string Key, GgufValue Value)> NestedArrays()
    {
        var inner1 = new GgufArray(GgufValueType.Int32, new[] { 1, 2, 3 });
        var inner2 = new GgufArray(GgufValueType.String, new[] { "p", "q" });
        var empty = new GgufArray(GgufValueType.Float32, System.Array.Empty<float>());
        yield return ("n.mixed", Arr(GgufValueType.Array, new[] { inner1, inner2, empty }));
        yield return ("n.deep", Arr(GgufValueType.Array, new[] { new GgufArray(GgufValueType.Array, new[] { inner1, new GgufArray(GgufValueType.Array, new[] { inner2 }) }) }));
        yield return ("n.empty", Arr(GgufValueType.Array, System.Array.Empty<GgufArray>()));
    }

    /// <summary>
    /// Tensors: every block layout family, odd shapes, 4-D, and empty rows (<c>ne[0] = 0</c>). The writer refuses a 0 in
    /// <c>ne[1..3]</c>: gguf.cpp divides by those dimensions when it loads a file.
    /// </summary>
    public static IEnumerable<(string Name, GgmlType Type, long[] Shape)> Tensors()
    {
        yield return ("f32.vec", GgmlType.F32, [7]);
        yield return ("f16.mat", GgmlType.F16, [5, 3]);
        yield return ("bf16.4d", GgmlType.BF16, [3, 2, 2, 2]);
        yield return ("q8_0", GgmlType.Q8_0, [64, 3]);
        yield return ("q4_k", GgmlType.Q4_K, [256, 2]);
        yield return ("iq2_xxs", GgmlType.IQ2_XXS, [512]);
        yield return ("tq1_0", GgmlType.TQ1_0, [256]);
        yield return ("mxfp4", GgmlType.MXFP4, [32, 1, 3]);
        yield return ("i8", GgmlType.I8, [13]);
        yield return ("f64", GgmlType.F64, [1, 1, 1, 1]);
        yield return ("empty.row", GgmlType.F32, [0]);
        yield return ("empty.q8_0", GgmlType.Q8_0, [0, 1, 1]);
        yield return ("after.empty", GgmlType.F32, [3]);
    }

    /// <summary>
    /// A writer with every value type, the given alignment (no <c>general.alignment</c> key when 0) and seeded tensor
    /// data. <paramref name="ggufCpp"/> leaves out what gguf.cpp cannot read: nested arrays and zero-row tensors.
    /// </summary>
    public static GgufWriter Build(int alignment = 0, bool ggufCpp = false, int seed = 1) => Build(alignment, ggufCpp, seed, out _);

    /// <inheritdoc cref="Build(int, bool, int)"/>
    public static GgufWriter Build(int alignment, bool ggufCpp, int seed, out Dictionary<string, byte[]> tensorData)
    {
        tensorData = [];
        var w = new GgufWriter();
        w.Set(GgufKeys.General.Architecture, GgufValue.String("synthetic"));
        if (alignment != 0) w.Set(GgufKeys.General.Alignment, GgufValue.UInt32((uint)alignment));
        foreach (var (k, v) in Scalars()) w.Set(k, v);
        foreach (var (k, v) in FlatArrays()) w.Set(k, v);
        if (!ggufCpp) foreach (var (k, v) in NestedArrays()) w.Set(k, v);
        var rng = new Random(seed);
        foreach (var (name, type, shape) in Tensors())
        {
            long bytes = GgmlTypes.RowSize(type, shape[0]) * shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            var data = new byte[bytes];
            rng.NextBytes(data);
            tensorData[name] = data;
            w.AddTensor(name, type, shape, data);
        }
        return w;
    }

    public static byte[] ToBytes(this GgufWriter w)
    {
        var ms = new MemoryStream();
        w.WriteTo(ms);
        return ms.ToArray();
    }

    private static GgufValue Arr(GgufValueType type, System.Array items) => GgufValue.Array(new GgufArray(type, items));
}
