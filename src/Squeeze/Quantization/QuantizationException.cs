namespace Squeeze.Quantization;

/// <summary>
/// A model cannot be quantized as asked: a tensor holds NaN or Inf, rows fit no type, an imatrix entry does not fit
/// its tensor, a type needs an imatrix that is missing. The message names the tensor (and row) and says what to do.
/// </summary>
public sealed class QuantizationException : InvalidInputException
{
    public QuantizationException(string message, string? tensor = null, long row = -1) : base(message)
    {
        Tensor = tensor;
        Row = row;
    }

    /// <summary>The tensor concerned, when there is one.</summary>
    public string? Tensor { get; }

    /// <summary>The row concerned (0-based, counting over all dimensions after the first), or -1.</summary>
    public long Row { get; }
}
