using Squeeze.Gguf;
using Squeeze.Quants;

namespace Squeeze.Models;

/// <summary>
/// A 2-D weight as the forward pass uses it: <see cref="Rows"/> rows of <see cref="Columns"/> elements,
/// left memory-mapped in its stored type and read through its type's kernels.
/// </summary>
public sealed unsafe class Weight
{
    internal Weight(GgufFile file, GgufTensorInfo info, TensorRole role, int layer)
    {
        Info = info;
        Role = role;
        Layer = layer;
        Data = file.GetTensorPointer(info);
        Columns = checked((int)info.RowLength);
        Rows = checked((int)info.RowCount);
        RowSize = checked((int)info.RowSize);
        Kernel = QuantKernels.Find(info.Type);
    }

    /// <summary>
    /// A weight whose data is held in memory instead of the file: <paramref name="data"/> holds the rows of
    /// <paramref name="info"/>, in <c>info.Type</c>. It is copied to the pinned heap, so its address stays put.
    /// </summary>
    internal Weight(GgufTensorInfo info, TensorRole role, int layer, byte[] data)
    {
        if (data.Length != info.ByteSize)
            throw new ArgumentException($"{info.Name}: {data.Length} bytes given, {info.ByteSize} needed", nameof(data));
        var pinned = GC.AllocateUninitializedArray<byte>(data.Length, pinned: true);
        data.CopyTo(pinned, 0);
        Info = info;
        Role = role;
        Layer = layer;
        _owned = pinned;
        Data = pinned.Length == 0 ? null : (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref pinned[0]);
        Columns = checked((int)info.RowLength);
        Rows = checked((int)info.RowCount);
        RowSize = checked((int)info.RowSize);
        Kernel = QuantKernels.Find(info.Type);
    }

    /// <summary>Keeps substituted data alive as long as the weight.</summary>
    private readonly byte[]? _owned;

    public GgufTensorInfo Info { get; }
    public string Name => Info.Name;
    public GgmlType Type => Info.Type;
    public TensorRole Role { get; }

    /// <summary>The layer, or -1 for tensors outside the blocks.</summary>
    public int Layer { get; }

    public int Rows { get; }
    public int Columns { get; }
    public int RowSize { get; }
    internal byte* Data { get; }

    /// <summary>The type's kernels, or null when Squeeze has none (then the forward pass refuses the model).</summary>
    public IQuantKernel? Kernel { get; }

    /// <summary>The stored bytes of row <paramref name="row"/>.</summary>
    public ReadOnlySpan<byte> Row(int row) => new(Data + (long)row * RowSize, RowSize);

    /// <summary>Row <paramref name="row"/> as floats (embedding lookups, norms, biases).</summary>
    public void DequantizeRow(int row, Span<float> destination) =>
        (Kernel ?? throw new NotSupportedException($"Squeeze has no kernels for {Type.Name()} ({Name})")).DequantizeRow(Row(row), destination);

    /// <summary>The whole tensor as floats (for small vectors: norms and biases).</summary>
    public float[] ToFloats()
    {
        var result = new float[(long)Rows * Columns];
        for (int r = 0; r < Rows; r++) DequantizeRow(r, result.AsSpan(r * Columns, Columns));
        return result;
    }

    public override string ToString() => Info.ToString();
}
