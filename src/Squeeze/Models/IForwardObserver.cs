namespace Squeeze.Models;

/// <summary>
/// Hooks into the forward pass, named as llama.cpp's graph callbacks are: the input of every matrix product
/// (the imatrix collector records these) and named activations (layer-importance scores read the hidden state
/// entering and leaving each layer). Called on the decoding thread, in order; the spans are valid only during the call.
/// </summary>
public interface IForwardObserver
{
    /// <summary>
    /// The input <c>x</c> of <c>y = W x</c> for <paramref name="weight"/>: <paramref name="rows"/> token rows of
    /// <c>weight.Columns</c> floats.
    /// </summary>
    void OnMatMulInput(Weight weight, ReadOnlySpan<float> x, int rows);

    /// <summary>A named activation (<see cref="Activations"/>) of <paramref name="layer"/>: <paramref name="rows"/> rows of n_embd floats.</summary>
    void OnActivation(string name, int layer, ReadOnlySpan<float> x, int rows);
}

/// <summary>Activation names passed to <see cref="IForwardObserver.OnActivation"/>.</summary>
public static class Activations
{
    /// <summary>The hidden state entering a layer.</summary>
    public const string LayerInput = "layer_inp";

    /// <summary>The hidden state leaving a layer (llama.cpp's <c>l_out</c>).</summary>
    public const string LayerOutput = "l_out";
}
