namespace Squeeze.Quants;

/// <summary>
/// The kernels of one ggml type, the counterpart of a row in ggml's <c>type_traits</c> and <c>type_traits_cpu</c>.
/// Rows are independent: quantizing a tensor is quantizing each of its rows.
/// </summary>
public interface IQuantKernel
{
    /// <summary>The type these kernels read and write.</summary>
    GgmlType Type { get; }

    /// <summary>
    /// The activation format ggml pairs with this type for dot products (Q8_0, Q8_1 or Q8_K for block formats;
    /// the type itself for F32/F16/BF16).
    /// </summary>
    GgmlType VecDotType { get; }

    /// <summary>Whether ggml refuses to quantize this type without importance weights.</summary>
    bool RequiresImportance { get; }

    /// <summary>
    /// Quantizes one row, bit-exactly as ggml's <c>ggml_quantize_chunk</c> does for the same row.
    /// <paramref name="importance"/> is empty or holds one weight per column (the imatrix's mean squared activations).
    /// </summary>
    void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance);

    /// <summary>
    /// Converts an activation row to this type as ggml-cpu does before a matrix product (its <c>from_float</c>), so that
    /// Squeeze's matmuls see the same activation bytes as llama.cpp's. For Q8_0 and Q8_1 this differs from the reference
    /// quantizer (scale 127/amax, rounding half to even); for the other types it is <see cref="QuantizeRow"/>.
    /// </summary>
    void QuantizeActivationRow(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeRow(src, dst, default);

    /// <summary>Dequantizes one row, bit-exactly as ggml's <c>to_float</c>.</summary>
    void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst);

    /// <summary>
    /// The dot product of a row <paramref name="x"/> of this type with a row <paramref name="y"/> of
    /// <see cref="VecDotType"/>, both of <paramref name="n"/> elements (ggml's <c>vec_dot</c>).
    /// </summary>
    float VecDot(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int n);

    /// <summary>
    /// A tile of dot products, the inner step of a matrix-matrix product:
    /// <c>s[t * sStride + r] = VecDot(x row r, y row t, n)</c> for <c>r &lt; rows</c>, <c>t &lt; cols</c>, where row r of
    /// <paramref name="x"/> (this type) starts at byte <c>r * xStride</c> and row t of <paramref name="y"/>
    /// (<see cref="VecDotType"/>) at byte <c>t * yStride</c>. Kernels with a tiled path override it to load each block
    /// once for several rows and columns; every result is bit-identical to <see cref="VecDot"/>'s.
    /// </summary>
    void VecDotTile(ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride) =>
        GemmTiles.VecDotEach(this, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
}
