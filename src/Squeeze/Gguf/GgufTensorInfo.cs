using Squeeze.Quants;

namespace Squeeze.Gguf;

/// <summary>
/// A tensor's entry in a GGUF file. <see cref="Shape"/> is in ggml order: <c>Shape[0]</c> is the row length
/// (the fastest-moving dimension), <c>Shape[1]</c> the number of rows, and so on.
/// </summary>
public sealed class GgufTensorInfo
{
    public GgufTensorInfo(string name, GgmlType type, IReadOnlyList<long> shape, long offset)
    {
        if (shape.Count is < 1 or > GgufFile.MaxDimensions)
            throw new ArgumentException($"a tensor has 1 to {GgufFile.MaxDimensions} dimensions, not {shape.Count}", nameof(shape));
        Name = name;
        Type = type;
        Shape = shape.ToArray();
        Offset = offset;
        long elements = 1;
        foreach (var n in Shape)
        {
            if (n < 0) throw new ArgumentException($"dimension {n} is negative", nameof(shape));
            elements = checked(elements * n);
        }
        ElementCount = elements;
        ByteSize = checked(GgmlTypes.RowSize(type, Shape[0]) * (Shape[0] == 0 ? 0 : elements / Shape[0]));
    }

    public string Name { get; }
    public GgmlType Type { get; }
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Offset of the tensor's data from the start of the file's data section.</summary>
    public long Offset { get; }

    public long ElementCount { get; }
    public long ByteSize { get; }

    /// <summary>Elements per row (<c>Shape[0]</c>).</summary>
    public long RowLength => Shape[0];

    /// <summary>Rows across all higher dimensions.</summary>
    public long RowCount => RowLength == 0 ? 0 : ElementCount / RowLength;

    /// <summary>Bytes of one row.</summary>
    public long RowSize => GgmlTypes.RowSize(Type, RowLength);

    public override string ToString() => $"{Name} {Type.Name()} [{string.Join(", ", Shape)}]";
}
