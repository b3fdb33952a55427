using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Models;

/// <summary>
/// <c>Y = X W^T</c> for a memory-mapped weight: the activation rows are converted once to the weight type's
/// vec-dot type (Q8_0, Q8_K, F16, ...), then each weight row is dotted with every activation row by the type's
/// kernel, with weight rows split across threads (a weight row is read once for the whole batch).
/// </summary>
internal sealed class MatMul(int threads)
{
    private byte[] _activations = [];

    /// <param name="w">The weight, <c>Rows x Columns</c>.</param>
    /// <param name="x"><paramref name="n"/> rows of <c>w.Columns</c> floats.</param>
    /// <param name="n">Activation rows (tokens).</param>
    /// <param name="y"><paramref name="n"/> rows of <c>w.Rows</c> floats (written).</param>
    public void Run(Weight w, float[] x, int n, float[] y)
    {
        var kernel = w.Kernel!;
        var vecDotType = kernel.VecDotType;
        var activationKernel = QuantKernels.Get(vecDotType);
        int cols = w.Columns, rows = w.Rows;
        int actRowSize = checked((int)GgmlTypes.RowSize(vecDotType, cols));
        if (_activations.Length < (long)actRowSize * n) _activations = new byte[(long)actRowSize * n];
        var act = _activations;
        Workers.For(n, threads, (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
                activationKernel.QuantizeActivationRow(x.AsSpan(t * cols, cols), act.AsSpan(t * actRowSize, actRowSize));
        });
        Workers.For(rows, threads, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var row = w.Row(r);
                for (int t = 0; t < n; t++)
                    y[(long)t * rows + r] = kernel.VecDot(row, act.AsSpan(t * actRowSize, actRowSize), cols);
            }
        }, minRange: 4);
    }
}
