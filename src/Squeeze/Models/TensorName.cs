using System.Globalization;

namespace Squeeze.Models;

/// <summary>
/// llama.cpp's tensor naming: per-layer tensors are <c>blk.{layer}.{role}.{weight|bias}</c>; the rest
/// (<c>token_embd.weight</c>, <c>output_norm.weight</c>, <c>output.weight</c>) belong to no layer.
/// </summary>
public static class TensorName
{
    public const string BlockPrefix = "blk.";

    /// <summary>The layer of a <c>blk.N.*</c> tensor, or null for tensors outside the blocks.</summary>
    public static int? LayerOf(string name)
    {
        if (!name.StartsWith(BlockPrefix, StringComparison.Ordinal)) return null;
        int end = name.IndexOf('.', BlockPrefix.Length);
        if (end < 0) return null;
        return int.TryParse(name.AsSpan(BlockPrefix.Length, end - BlockPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int layer)
            ? layer
            : null;
    }
}
