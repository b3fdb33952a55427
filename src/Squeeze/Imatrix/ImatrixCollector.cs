using System.Numerics;
using System.Runtime.InteropServices;
using Squeeze.Models;

namespace Squeeze.Imatrix;

/// <summary>
/// Records an imatrix from the forward pass, with llama-imatrix's rules (<c>collect_imatrix</c>, tools/imatrix/imatrix.cpp):
/// only matrix products whose weight is named <c>blk.*</c> (or <c>output.weight</c> with <see cref="ProcessOutput"/>)
/// and whose batch has at least <see cref="MinRows"/> token rows are recorded; per input column Σx² (and Σx), per weight
/// the token count. Also gathers the per-layer importance scores of <see cref="Imatrix.LayerImportance"/> on the same
/// batches. Attach it as <see cref="Transformer.Observer"/>.
/// </summary>
public sealed class ImatrixCollector : IForwardObserver
{
    private readonly ImatrixData _data;
    private readonly LayerImportance? _importance;

    // Layer-importance state: the hidden state entering each layer, and (ik_llama.cpp's layer similarity) the
    // inputs of the current layer's first attention and first FFN matrix product.
    private float[] _layerInput = [];
    private int _layerInputLayer = -1, _layerInputRows;
    private float[] _attnInput = [], _ffnInput = [];
    private int _attnLayer = -1, _ffnLayer = -1, _attnRows, _ffnRows;

    /// <param name="data">Where to accumulate (may already hold merged or resumed data).</param>
    /// <param name="layers">The model's layer count, for the layer-importance scores; 0 to skip them.</param>
    /// <param name="collectInSum">Also accumulate Σx (<c>.in_sum</c>) for new entries.</param>
    public ImatrixCollector(ImatrixData data, int layers, bool collectInSum = true)
    {
        _data = data;
        CollectInSum = collectInSum;
        if (layers > 0)
        {
            data.LayerImportance ??= new LayerImportance(layers);
            if (data.LayerImportance.Layers != layers)
                throw new InvalidInputException($"the imatrix holds layer-importance scores for {data.LayerImportance.Layers} layers, the model has {layers}");
            _importance = data.LayerImportance;
        }
    }

    /// <summary>Record <c>output.weight</c> too (llama-imatrix's <c>--process-output</c>).</summary>
    public bool ProcessOutput { get; init; }

    /// <summary>Smaller batches are ignored, as llama.cpp ignores matrix products over fewer than 16 tokens.</summary>
    public int MinRows { get; init; } = 16;

    public bool CollectInSum { get; }

    /// <summary>The largest token count of any matrix divided by the chunk size, kept current (llama.cpp's <c>m_last_chunk</c>).</summary>
    public int ChunkCount => _data.ChunkCount;

    /// <summary>Whether llama-imatrix records the input of <paramref name="name"/>'s matrix product.</summary>
    public bool Records(string name) => name.StartsWith("blk.", StringComparison.Ordinal) || (ProcessOutput && name == "output.weight");

    public void OnMatMulInput(Weight weight, ReadOnlySpan<float> x, int rows)
    {
        if (rows < MinRows) return;
        if (_importance is not null) TrackSimilarity(weight, x, rows);
        OnMatMulInput(weight.Name, weight.Columns, x, rows);
    }

    /// <summary>
    /// The input of a matrix product with the weight named <paramref name="weightName"/>, from any forward pass: recorded
    /// when llama-imatrix would record it (enough rows, a recorded name). No layer-importance tracking.
    /// </summary>
    public void OnMatMulInput(string weightName, int columns, ReadOnlySpan<float> x, int rows)
    {
        if (rows < MinRows || !Records(weightName)) return;
        AddDense(weightName, columns, x, rows);
    }

    /// <summary>
    /// Adds <paramref name="rows"/> token rows of <paramref name="columns"/> floats to a dense weight's entry (llama.cpp's
    /// MUL_MAT branch): Σx² and Σx per column in float, row after row; the count grows by the rows.
    /// </summary>
    public void AddDense(string name, int columns, ReadOnlySpan<float> x, int rows)
    {
        if (x.Length < (long)rows * columns) throw new ArgumentException("fewer floats than rows x columns", nameof(x));
        if (!_data.Entries.TryGetValue(name, out var e))
        {
            e = new ImatrixAccumulator(new float[columns], [0], CollectInSum ? new float[columns] : null);
            _data.Entries.Add(name, e);
        }
        // A single count per dense weight (older GGUF imatrices may carry equal counts per matrix).
        if (e.Counts.Length > 1 && e.Counts.All(c => c == e.Counts[0])) e.Counts = [e.Counts[0]];
        if (e.InSum2.Length != columns)
            throw new InvalidInputException($"imatrix entry '{name}' has {e.InSum2.Length} values, but the model's weight has {columns} columns");

        var sq = e.InSum2.AsSpan();
        var sum = e.InSum is null ? default : e.InSum.AsSpan();
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * columns, columns);
            AccumulateSquares(sq, row);
            if (!sum.IsEmpty) Accumulate(sum, row);
        }
        CheckFinite(name, sq);
        for (int i = 0; i < e.Counts.Length; i++) e.Counts[i] += rows;
        Advance(e);
    }

    /// <summary>
    /// Adds the inputs of an expert matrix product (llama.cpp's MUL_MAT_ID branch): for token <c>t</c> and slot <c>k</c>
    /// the routed expert is <c>ids[t * used + k]</c> and the input row is <c>x[(t * inputsPerToken + k % inputsPerToken) * columns ..]</c>
    /// (<paramref name="inputsPerToken"/> is 1 when all experts share the token's input, else <paramref name="used"/>).
    /// Experts never routed to keep count 0.
    /// </summary>
    public void AddExperts(string name, int columns, int experts, int used, int tokens, int inputsPerToken, ReadOnlySpan<float> x, ReadOnlySpan<int> ids)
    {
        if (ids.Length < (long)tokens * used || x.Length < (long)tokens * inputsPerToken * columns)
            throw new ArgumentException("ids or inputs shorter than the tokens need");
        if (!_data.Entries.TryGetValue(name, out var e))
        {
            e = new ImatrixAccumulator(new float[(long)columns * experts], new long[experts], CollectInSum ? new float[(long)columns * experts] : null);
            _data.Entries.Add(name, e);
        }
        if (e.Counts.Length == 1 && experts > 1) e.Counts = Enumerable.Repeat(e.Counts[0], experts).ToArray();
        if (e.InSum2.Length != (long)columns * experts)
            throw new InvalidInputException($"imatrix entry '{name}' has {e.InSum2.Length} values, the model's {experts} experts need {(long)columns * experts}");
        if (e.Counts.Length != experts)
            throw new InvalidInputException($"imatrix entry '{name}' has {e.Counts.Length} counts for {experts} experts");
        for (int ex = 0; ex < experts; ex++)
        {
            var sq = e.InSum2.AsSpan(ex * columns, columns);
            var sum = e.InSum is null ? default : e.InSum.AsSpan(ex * columns, columns);
            for (int k = 0; k < used; k++)
                for (int t = 0; t < tokens; t++)
                {
                    int routed = ids[t * used + k];
                    if ((uint)routed >= (uint)experts) throw new ArgumentOutOfRangeException(nameof(ids), $"expert {routed} of {experts}");
                    if (routed != ex) continue;
                    var row = x.Slice((t * inputsPerToken + k % inputsPerToken) * columns, columns);
                    e.Counts[ex]++;
                    AccumulateSquares(sq, row);
                    if (!sum.IsEmpty) Accumulate(sum, row);
                }
            CheckFinite(name, sq);
        }
        Advance(e);
    }

    public void OnActivation(string name, int layer, ReadOnlySpan<float> x, int rows)
    {
        if (_importance is null || rows < MinRows || (uint)layer >= (uint)_importance.Layers) return;
        if (name == Activations.LayerInput)
        {
            if (layer == 0) _attnLayer = _ffnLayer = -1; // a new batch starts
            Keep(ref _layerInput, x);
            _layerInputLayer = layer;
            _layerInputRows = rows;
        }
        else if (name == Activations.LayerOutput && _layerInputLayer == layer && _layerInputRows == rows)
        {
            AddCosines(LayerImportance.Score.Lim, layer, _layerInput, x, rows);
            _layerInputLayer = -1;
        }
    }

    /// <summary>ik_llama.cpp's layer similarity: first attention input, first FFN input, the next layer's (or the head's) input.</summary>
    private void TrackSimilarity(Weight weight, ReadOnlySpan<float> x, int rows)
    {
        int layer = weight.Layer;
        if (layer < 0)
        {
            // The output projection's input follows the last layer.
            if (weight.Role is TensorRole.Output or TensorRole.TokenEmbd) NextLayerInput(_importance!.Layers, x, rows);
            return;
        }
        bool ffn = weight.Role is TensorRole.FfnGate or TensorRole.FfnUp or TensorRole.FfnDown;
        if (!ffn && layer != _attnLayer)
        {
            NextLayerInput(layer, x, rows);
            Keep(ref _attnInput, x);
            _attnLayer = layer;
            _attnRows = rows;
        }
        else if (ffn && layer != _ffnLayer && layer == _attnLayer && rows == _attnRows)
        {
            Keep(ref _ffnInput, x);
            _ffnLayer = layer;
            _ffnRows = rows;
            AddCosines(LayerImportance.Score.Attn, layer, _ffnInput, _attnInput, rows);
        }
    }

    private void NextLayerInput(int layer, ReadOnlySpan<float> x, int rows)
    {
        int prev = layer - 1;
        if (prev >= 0 && _attnLayer == prev && _attnRows == rows)
        {
            AddCosines(LayerImportance.Score.Layer, prev, _attnInput, x, rows);
            if (_ffnLayer == prev && _ffnRows == rows)
                AddCosines(LayerImportance.Score.Ffn, prev, _ffnInput, x, rows);
        }
        if (layer >= _importance!.Layers) { _attnLayer = _ffnLayer = -1; }
    }

    private static void Keep(ref float[] buffer, ReadOnlySpan<float> x)
    {
        if (buffer.Length < x.Length) buffer = new float[x.Length];
        x.CopyTo(buffer);
    }

    /// <summary>
    /// Adds cos(a_r, b_r) of every row to the score, one token at a time, so that the sums do not depend on how the
    /// tokens were batched (each cosine in double; 0 for a zero row).
    /// </summary>
    private void AddCosines(LayerImportance.Score score, int layer, ReadOnlySpan<float> a, ReadOnlySpan<float> b, int rows)
    {
        int n = b.Length / rows;
        for (int r = 0; r < rows; r++)
        {
            var x = a.Slice(r * n, n);
            var y = b.Slice(r * n, n);
            double xy = 0, xx = 0, yy = 0;
            for (int j = 0; j < n; j++) { xy += (double)x[j] * y[j]; xx += (double)x[j] * x[j]; yy += (double)y[j] * y[j]; }
            _importance!.Add(score, layer, xx > 0 && yy > 0 ? xy / Math.Sqrt(xx * yy) : 0, 1);
        }
    }

    private void Advance(ImatrixAccumulator e)
    {
        long max = e.Counts.Max();
        int n = checked((int)(max / _data.ChunkSize));
        if (n > _data.ChunkCount) _data.ChunkCount = n;
    }

    private static void CheckFinite(string name, ReadOnlySpan<float> values)
    {
        foreach (var v in values)
            if (!float.IsFinite(v)) throw new InvalidInputException($"{v} detected in the activations of {name}");
    }

    /// <summary>acc[j] += x[j]·x[j], rounded after the product and after the sum as ggml's float loop is (no FMA).</summary>
    private static void AccumulateSquares(Span<float> acc, ReadOnlySpan<float> x)
    {
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var a = MemoryMarshal.Cast<float, Vector<float>>(acc);
            var v = MemoryMarshal.Cast<float, Vector<float>>(x);
            for (int i = 0; i < a.Length; i++)
            {
                var sq = v[i] * v[i];
                a[i] += sq;
            }
            j = a.Length * Vector<float>.Count;
        }
        for (; j < acc.Length; j++)
        {
            float sq = x[j] * x[j];
            acc[j] += sq;
        }
    }

    private static void Accumulate(Span<float> acc, ReadOnlySpan<float> x)
    {
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var a = MemoryMarshal.Cast<float, Vector<float>>(acc);
            var v = MemoryMarshal.Cast<float, Vector<float>>(x);
            for (int i = 0; i < a.Length; i++) a[i] += v[i];
            j = a.Length * Vector<float>.Count;
        }
        for (; j < acc.Length; j++) acc[j] += x[j];
    }
}
