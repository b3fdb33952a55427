using System.Globalization;
using System.Text.RegularExpressions;

namespace Squeeze.Quantization;

/// <summary>
/// <c>--prune-layers</c>: drops whole blocks and renumbers the rest (llama.cpp's <c>remap_layer</c>, src/llama-quant.cpp
/// at 815a2a591). Blocks below the first pruned one keep their numbers; later kept blocks are numbered on from there in
/// the order met; the block count written is one past the last number given. Tensors must be visited in llama.cpp's
/// order (<see cref="QuantizationPlan.LlamaOrder"/>).
/// </summary>
public sealed partial class LayerPruning
{
    private readonly int[] _prune;
    private readonly Dictionary<int, int?> _mapped = [];
    private int _next;

    /// <param name="layers">The layers to drop (any order, duplicates allowed; each at least 0).</param>
    /// <exception cref="InvalidInputException">A negative layer.</exception>
    public LayerPruning(IEnumerable<int> layers)
    {
        _prune = layers.Distinct().Order().ToArray();
        if (_prune.Length > 0 && _prune[0] < 0) throw new InvalidInputException($"--prune-layers: invalid layer id {_prune[0]}");
    }

    /// <summary>Whether any layer is pruned.</summary>
    public bool Active => _prune.Length > 0;

    /// <summary>The pruned layers, sorted.</summary>
    public IReadOnlyList<int> Layers => _prune;

    /// <summary>The block count after pruning (llama.cpp writes the next number it would have given).</summary>
    public int BlockCount => _next;

    [GeneratedRegex(@"blk\.(\d+)\.", RegexOptions.CultureInvariant)]
    private static partial Regex BlockPattern();

    /// <summary>The tensor's name in the output, or null when its block is pruned.</summary>
    public string? Remap(string name)
    {
        if (!Active) return name;
        var m = BlockPattern().Match(name);
        if (!m.Success) return name;
        // stoi: digits beyond int range would throw in llama.cpp; such names do not come from real models.
        if (!int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int block))
            throw new QuantizationException($"tensor '{name}': block number out of range", name);
        if (!_mapped.TryGetValue(block, out var to))
        {
            if (Array.BinarySearch(_prune, block) >= 0) to = null;
            else if (block < _prune[0]) { to = block; _next = block + 1; }
            else to = _next++;
            _mapped[block] = to;
        }
        if (to is not int n) return null;
        var g = m.Groups[1];
        return string.Concat(name.AsSpan(0, g.Index), n.ToString(CultureInfo.InvariantCulture), name.AsSpan(g.Index + g.Length));
    }
}
