using System.Globalization;

namespace Squeeze.Gguf;

/// <summary>
/// A typed GGUF metadata value. The GGUF type is kept exactly (a <c>u32</c> stays a <c>u32</c>) so that
/// reading and writing a file gives the same bytes.
/// </summary>
public sealed class GgufValue : IEquatable<GgufValue>
{
    private GgufValue(GgufValueType type, object value)
    {
        Type = type;
        Value = value;
    }

    /// <summary>The value's GGUF type.</summary>
    public GgufValueType Type { get; }

    /// <summary>
    /// The value: a <see cref="byte"/>, <see cref="sbyte"/>, <see cref="ushort"/>, <see cref="short"/>, <see cref="uint"/>,
    /// <see cref="int"/>, <see cref="float"/>, <see cref="bool"/>, <see cref="string"/>, <see cref="ulong"/>, <see cref="long"/>,
    /// <see cref="double"/> or <see cref="GgufArray"/>.
    /// </summary>
    public object Value { get; }

    public static GgufValue UInt8(byte v) => new(GgufValueType.UInt8, v);
    public static GgufValue Int8(sbyte v) => new(GgufValueType.Int8, v);
    public static GgufValue UInt16(ushort v) => new(GgufValueType.UInt16, v);
    public static GgufValue Int16(short v) => new(GgufValueType.Int16, v);
    public static GgufValue UInt32(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Int32(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Float32(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue String(string v) => new(GgufValueType.String, v ?? throw new ArgumentNullException(nameof(v)));
    public static GgufValue UInt64(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Int64(long v) => new(GgufValueType.Int64, v);
    public static GgufValue Float64(double v) => new(GgufValueType.Float64, v);
    public static GgufValue Array(GgufArray v) => new(GgufValueType.Array, v ?? throw new ArgumentNullException(nameof(v)));

    /// <summary>An array of strings.</summary>
    public static GgufValue Strings(IEnumerable<string> items) => Array(GgufArray.Of(items.ToArray()));

    /// <summary>Builds a value of <paramref name="type"/> from a boxed value of the matching .NET type.</summary>
    internal static GgufValue FromBoxed(GgufValueType type, object value) => new(type, value);

    public string AsString() => Value as string ?? throw WrongType("a string");
    public bool AsBool() => Value is bool b ? b : throw WrongType("a bool");
    public GgufArray AsArray() => Value as GgufArray ?? throw WrongType("an array");

    /// <summary>Any integer type as <see cref="long"/>; throws for other types or a <c>u64</c> above <see cref="long.MaxValue"/>.</summary>
    public long AsInt64() => Value switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        long v => v,
        ulong v when v <= long.MaxValue => (long)v,
        _ => throw WrongType("an integer"),
    };

    /// <summary>Any integer or float type as <see cref="double"/>.</summary>
    public double AsDouble() => Value switch
    {
        float v => v,
        double v => v,
        ulong v => v,
        _ => AsInt64(),
    };

    private InvalidOperationException WrongType(string expected) =>
        new($"metadata value is {Type.ShortName()}, not {expected}");

    /// <summary>A short human-readable form; arrays show their element type and count.</summary>
    public override string ToString() => Value switch
    {
        string s => s,
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        GgufArray a => a.ToString(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };

    public bool Equals(GgufValue? other) =>
        other is not null && other.Type == Type &&
        (Value is GgufArray a ? a.Equals(other.Value as GgufArray) : BitEquals(Value, other.Value));

    // Floats compare by bits so that NaN payloads and -0 round-trip as "equal" only when identical.
    private static bool BitEquals(object a, object b) => (a, b) switch
    {
        (float x, float y) => BitConverter.SingleToInt32Bits(x) == BitConverter.SingleToInt32Bits(y),
        (double x, double y) => BitConverter.DoubleToInt64Bits(x) == BitConverter.DoubleToInt64Bits(y),
        _ => a.Equals(b),
    };

    public override bool Equals(object? obj) => Equals(obj as GgufValue);
    public override int GetHashCode() => HashCode.Combine(Type, Value is GgufArray a ? a.Count : Value.GetHashCode());
}

/// <summary>
/// A GGUF array: an element type and a typed .NET array of items (<c>uint[]</c> for <c>u32</c>, <c>string[]</c>
/// for <c>str</c>, <see cref="GgufArray"/><c>[]</c> for nested arrays).
/// </summary>
public sealed class GgufArray : IEquatable<GgufArray>
{
    public GgufArray(GgufValueType elementType, System.Array items)
    {
        var expected = ClrType(elementType);
        if (items.GetType().GetElementType() != expected)
            throw new ArgumentException($"a {elementType.ShortName()} array needs {expected.Name}[] items, not {items.GetType().Name}", nameof(items));
        ElementType = elementType;
        Items = items;
    }

    public GgufValueType ElementType { get; }
    public System.Array Items { get; }
    public int Count => Items.Length;

    public static GgufArray Of(string[] items) => new(GgufValueType.String, items);
    public static GgufArray Of(int[] items) => new(GgufValueType.Int32, items);
    public static GgufArray Of(uint[] items) => new(GgufValueType.UInt32, items);
    public static GgufArray Of(float[] items) => new(GgufValueType.Float32, items);

    /// <summary>The items as <typeparamref name="T"/>[]; throws if the element type differs.</summary>
    public T[] As<T>() => Items as T[] ?? throw new InvalidOperationException(
        $"array holds {ElementType.ShortName()} items, not {typeof(T).Name}");

    /// <summary>The item at <paramref name="index"/> as a <see cref="GgufValue"/>.</summary>
    public GgufValue this[int index] => GgufValue.FromBoxed(ElementType, Items.GetValue(index)!);

    internal static Type ClrType(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.Array => typeof(GgufArray),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a GGUF value type"),
    };

    public bool Equals(GgufArray? other)
    {
        if (other is null || other.ElementType != ElementType || other.Count != Count) return false;
        for (int i = 0; i < Count; i++)
            if (!this[i].Equals(other[i])) return false;
        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as GgufArray);
    public override int GetHashCode() => HashCode.Combine(ElementType, Count);

    public override string ToString() => $"[{ElementType.ShortName()} x {Count}]";
}
