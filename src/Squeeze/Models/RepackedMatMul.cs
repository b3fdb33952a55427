using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Models;

/// <summary>
/// <c>Y = X W^T</c> for the weights llama.cpp multiplies through ggml-cpu's repacked kernels (see <see cref="Repack"/>):
/// the activations are quantized once (Q8_0 or Q8_K), and each output is computed in the gemm or gemv order that
/// llama.cpp uses for that activation row. The weight stays
/// memory-mapped in its stored layout; the work is split by groups of 8 weight rows and by chunks of tokens.
/// </summary>
internal sealed unsafe class RepackedMatMul(int threads)
{
    private const int TokenChunk = 64;

    private byte[] _activations = [];

    /// <summary>Whether llama.cpp would repack <paramref name="w"/> on this CPU.</summary>
    public static bool Applies(Weight w) => w.Kernel is not null && Repack.Applies(w.Type, w.Rows);

    /// <inheritdoc cref="MatMul.Run"/>
    public void Run(Weight w, float[] x, int n, float[] y)
    {
        var type = w.Type;
        int cols = w.Columns, rows = w.Rows, rowSize = w.RowSize;
        int actRowSize = checked((int)GgmlTypes.RowSize(Repack.ActivationType(type), cols));
        if (_activations.Length < (long)actRowSize * n)
            _activations = GC.AllocateUninitializedArray<byte>(checked(actRowSize * n), pinned: true);
        var act = _activations;
        Workers.For(n, threads, (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
                Repack.QuantizeActivationRow(type, x.AsSpan(t * cols, cols), act.AsSpan(t * actRowSize, actRowSize));
        });

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
