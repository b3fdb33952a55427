using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Models;

/// <summary>
/// <c>Y = X W^T</c> for the weights llama.cpp multiplies through ggml-cpu's repacked kernels (see <see cref="Repack"/>):
/// each output is computed in the gemm or gemv order that llama.cpp uses for that activation row. The weight stays
/// memory-mapped in its stored layout; the work is split by groups of 8 weight rows and by chunks of tokens.
/// </summary>
internal static unsafe class RepackedMatMul
{
    private const int TokenChunk = 64;

    /// <summary>Whether llama.cpp would repack <paramref name="w"/> on this CPU.</summary>
    public static bool Applies(Weight w) => w.Kernel is not null && Repack.Applies(w.Type, w.Rows);

    /// <param name="w">The weight, <c>Rows x Columns</c>.</param>
    /// <param name="act"><paramref name="n"/> activation rows of <paramref name="actRowSize"/> bytes, quantized to the
    /// weight's vec-dot type (the repacked kernels' activation type, <see cref="Repack.ActivationType"/>).</param>
    /// <param name="actRowSize">Bytes per quantized activation row.</param>
    /// <param name="n">Activation rows (tokens).</param>
    /// <param name="y"><paramref name="n"/> rows of <c>w.Rows</c> floats (written).</param>
    /// <param name="threads">Worker threads.</param>
    public static void Run(Weight w, byte[] act, int actRowSize, int n, float[] y, int threads)
    {
        var type = w.Type;
        int cols = w.Columns, rows = w.Rows, rowSize = w.RowSize;

        // ggml runs rows [0, n - n % 4) through gemm, the rest through gemv.
        int gemmRows = n - n % 4;
        byte* data = w.Data;
        int groups = rows / Repack.Interleave;
        if (n < 4)
        {
            Workers.For(groups, threads, (g0, g1) =>
            {
                fixed (byte* pa = act)
                fixed (float* py = y)
                    Repack.Multiply(type, data + (long)g0 * Repack.Interleave * rowSize, rowSize, (g1 - g0) * Repack.Interleave,
                        pa, actRowSize, 0, n, gemmRows, cols, py + g0 * Repack.Interleave, rows);
            }, minRange: 2);
            return;
        }
        int groupChunk = Math.Clamp(groups / Math.Max(1, threads * 4), 1, 64);
        int rowChunks = (groups + groupChunk - 1) / groupChunk, tokenChunks = (n + TokenChunk - 1) / TokenChunk;
        Workers.Each(rowChunks * tokenChunks, threads, i =>
        {
            int g0 = i % rowChunks * groupChunk, t0 = i / rowChunks * TokenChunk;
            int gc = Math.Min(groupChunk, groups - g0), t1 = Math.Min(n, t0 + TokenChunk);
            fixed (byte* pa = act)
            fixed (float* py = y)
                Repack.Multiply(type, data + (long)g0 * Repack.Interleave * rowSize, rowSize, gc * Repack.Interleave,
                    pa, actRowSize, t0, t1, gemmRows, cols, py + g0 * Repack.Interleave, rows);
        });
    }
}
