using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Models;

/// <summary>
/// <c>Y = X W^T</c> for a memory-mapped weight: the activation rows are converted once to the weight type's
/// vec-dot type (Q8_0, Q8_K, F16, ...). One token: weight rows are split across threads (a one-column tile each).
/// A batch: the product is cut into chunks of weight rows x tokens, handed to the threads in token-chunk order, and
/// each chunk runs the type's tiled kernel (<see cref="IQuantKernel.VecDotTile"/>), which loads each weight block
/// once for several tokens; results equal the one-product-at-a-time path bit for bit.
/// </summary>
internal sealed unsafe class MatMul(int threads)
{
    /// <summary>Tokens per chunk: their activation rows stay in the core's L2 cache while weight rows stream past.</summary>
    private const int TokenChunk = 64;

    private byte[] _activations = [];

    /// <summary>Batches llama.cpp hands to llamafile's tinyBLAS, whose summation order differs from vec_dot's.</summary>
    private readonly TinyBlas _tinyBlas = new();

    /// <param name="w">The weight, <c>Rows x Columns</c>.</param>
    /// <param name="x"><paramref name="n"/> rows of <c>w.Columns</c> floats.</param>
    /// <param name="n">Activation rows (tokens).</param>
    /// <param name="y"><paramref name="n"/> rows of <c>w.Rows</c> floats (written).</param>
    public void Run(Weight w, float[] x, int n, float[] y)
    {
        var kernel = w.Kernel!;
        var vecDotType = kernel.VecDotType;
        var activationKernel = QuantKernels.Get(vecDotType);
        int cols = w.Columns, rows = w.Rows, rowSize = w.RowSize;
        int actRowSize = checked((int)GgmlTypes.RowSize(vecDotType, cols));
        if (_activations.Length < (long)actRowSize * n) _activations = new byte[(long)actRowSize * n];
        var act = _activations;
        Workers.For(n, threads, (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
                activationKernel.QuantizeActivationRow(x.AsSpan(t * cols, cols), act.AsSpan(t * actRowSize, actRowSize));
        });

        // Weights llama.cpp repacks (ggml-cpu's CPU_REPACK buffer; their activation type is the vec-dot type) are
        // multiplied in the repacked kernels' order.
        if (RepackedMatMul.Applies(w))
        {
            RepackedMatMul.Run(w, act, actRowSize, n, y, threads);
            return;
        }

        if (TinyBlas.Serves(w.Type, rows, cols, n))
        {
            _tinyBlas.Run(w, act, actRowSize, n, y, threads);
            return;
        }

        if (n == 1)
        {
            byte* rowData = w.Data;
            Workers.For(rows, threads, (r0, r1) =>
                kernel.VecDotTile(new ReadOnlySpan<byte>(rowData + (long)r0 * rowSize, (r1 - r0) * rowSize), rowSize, r1 - r0,
                    act.AsSpan(0, actRowSize), actRowSize, 1, cols, y.AsSpan(r0, r1 - r0), r1 - r0), minRange: 16);
            return;
        }

        // Enough row chunks for every thread to stay busy within a token chunk, each a multiple of 16 rows.
        int rowChunk = Math.Clamp((rows / Math.Max(1, threads * 4) + 15) & ~15, 16, 512);
        int rowChunks = (rows + rowChunk - 1) / rowChunk, tokenChunks = (n + TokenChunk - 1) / TokenChunk;
        byte* data = w.Data;
        Workers.Each(rowChunks * tokenChunks, threads, i =>
        {
            int r0 = i % rowChunks * rowChunk, t0 = i / rowChunks * TokenChunk;
            int rc = Math.Min(rowChunk, rows - r0), tc = Math.Min(TokenChunk, n - t0);
            var weights = new ReadOnlySpan<byte>(data + (long)r0 * rowSize, rc * rowSize);
            kernel.VecDotTile(weights, rowSize, rc, act.AsSpan(t0 * actRowSize, tc * actRowSize), actRowSize, tc, cols,
                y.AsSpan(t0 * rows + r0, (tc - 1) * rows + rc), rows);
        });
    }
}
