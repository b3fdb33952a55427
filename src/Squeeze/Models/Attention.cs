using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Squeeze.Numerics;

namespace Squeeze.Models;

/// <summary>
/// Causal attention over the fp16 KV cache with the arithmetic of ggml-cpu's flash-attention kernel
/// (<c>ggml_compute_forward_flash_attn_ext_f16</c>, ops.cpp at 815a2a591, AVX-512 build), which llama.cpp runs by default
/// on the CPU. ggml takes one of three paths, chosen by the batch:
/// <list type="bullet">
/// <item><b>Tiled</b> (64 or more tokens in the batch, head size a multiple of 16): f32 queries (not rounded), keys and
/// values widened to f32, cells visited in tiles of 64. A score is one FMA chain over the head dimension, then times the
/// scale. Per tile and query: the tile's maximum updates the running maximum M (on a rise the accumulator and the sum S
/// are multiplied by <c>expf(Mold - Mnew)</c>), each score becomes <c>ggml_v_expf(s - M)</c> (a polynomial, not libm),
/// S grows by those exponentials summed in groups of 16 (a halving tree) and in double across groups, and the f32
/// accumulator takes one FMA per cell, in cell order.</item>
/// <item><b>Split</b> (one token, a padded KV length of 512 cells or more): the cells are cut into one chunk per thread,
/// each chunk runs the per-cell path below, and the chunks are merged in order with <c>expf</c> rescaling.</item>
/// <item><b>Per cell</b> (otherwise): the query rounded to fp16, each visible cell's score a <c>ggml_vec_dot_f16</c>
/// (four 16-lane FMA accumulators, a fixed reduction) times the scale, online softmax with libm <c>expf</c> on every
/// new maximum or weight, and the value accumulator kept in <b>fp16</b>, rounded after every scale and every FMA.</item>
/// </list>
/// Every path ends with the accumulator times <c>1/S</c>. Masked cells are skipped, which is exact: they add zeros.
/// ggml picks the path per micro-batch; here the decoded batch is the micro-batch. The split path depends on ggml's
/// thread count, matched by <see cref="Threads"/>.
/// </summary>
internal sealed class Attention
{
    /// <summary>ggml's <c>GGML_FA_TILE_Q</c>: batches of this many tokens or more take the tiled path.</summary>
    internal const int QTile = 64;

    /// <summary>ggml's <c>GGML_FA_TILE_KV</c>: cells per tile.</summary>
    internal const int KvTile = 64;

    /// <summary>f32 lanes of the AVX-512 build (<c>GGML_F32_EPR</c>, <c>GGML_F16_EPR</c>).</summary>
    internal const int Lanes = 16;

    /// <summary><c>GGML_F16_STEP</c>: four 16-lane accumulators.</summary>
    private const int F16Step = 64;

    /// <summary>One-token batches over at least this many (padded) cells split the cells across threads.</summary>
    internal const int SplitKvMin = 512;

    // Query rows per tiled work item, held in four 16-lane vectors.
    private const int Rows = 64, RowVectors = Rows / Lanes;

    private readonly int _heads, _kvHeads, _headDim, _group;
    private readonly float _scale;

    // Scratch reused across calls, owned by this instance (not per thread, so nothing outlives it on pool threads).
    private readonly System.Collections.Concurrent.ConcurrentBag<PerCellState> _perCell = [];
    private readonly System.Collections.Concurrent.ConcurrentBag<TiledScratch> _tiled = [];

    // The layer's cached keys and values widened to f32 once per call (cells [0, UsedEnd)), shared by every query row.
    private float[] _keys = [], _values = [];

    public Attention(int heads, int kvHeads, int headDim, int threads)
    {
        _heads = heads;
        _kvHeads = kvHeads;
        _headDim = headDim;
        _group = heads / kvHeads;
        _scale = 1f / MathF.Sqrt(headDim);
        Threads = threads;
    }

    /// <summary>Threads used, and the chunk count of the split path (llama.cpp's thread count).</summary>
    public int Threads { get; }

    internal enum Path { PerCell, Tiled, Split }

    internal Path Choose(int tokens, int paddedCells) =>
        tokens >= QTile && _headDim % Lanes == 0 ? Path.Tiled
        : tokens == 1 && paddedCells >= SplitKvMin ? Path.Split
        : Path.PerCell;

    /// <summary>
    /// Attention of every token and head of a batch whose keys and values are already in <paramref name="cache"/>:
    /// <paramref name="q"/> and <paramref name="output"/> are token rows of heads x head size floats.
    /// </summary>
    public void Run(KvCache cache, int layer, ReadOnlySpan<BatchToken> tokens, float[] q, float[] output)
    {
        var batch = tokens.ToArray();
        Widen(cache, layer);
        // Vector512 code runs as two 256-bit halves without AVX-512, with the same results.
        bool vector = Simd.Level >= SimdLevel.Avx2;
        switch (Choose(batch.Length, cache.PaddedLength))
        {
            case Path.Tiled:
                int perItem = Math.Max(1, Rows / _group), blocks = (batch.Length + perItem - 1) / perItem;
                if (_group > Rows || !vector)
                {
                    Workers.For(batch.Length * _heads, Threads, (start, end) =>
                    {
                        for (int job = start; job < end; job++) TiledReference(cache, layer, batch, job / _heads, job % _heads, q, output);
                    });
                    break;
                }
                Workers.For(blocks * _kvHeads, Threads, (start, end) =>
                {
                    for (int job = start; job < end; job++)
                    {
                        int block = job / _kvHeads, g = job % _kvHeads;
                        TiledBlock(cache, layer, batch, block * perItem, Math.Min(batch.Length, (block + 1) * perItem), g, q, output);
                    }
                });
                break;
            case Path.Split:
                Split(cache, layer, batch[0], q, output, vector);
                break;
            default:
                Workers.For(batch.Length * _kvHeads, Threads, (start, end) =>
                {
                    var state = TakePerCell();
                    for (int job = start; job < end; job++)
                    {
                        int t = job / _kvHeads, g = job % _kvHeads;
                        state.Reset();
                        PerCell(cache, layer, batch[t], g, q.AsSpan(t * _heads * _headDim + g * _group * _headDim, _group * _headDim), 0, cache.UsedEnd, state, vector);
                        state.Finish(output.AsSpan(t * _heads * _headDim + g * _group * _headDim, _group * _headDim));
                    }
                    _perCell.Add(state);
                });
                break;
        }
    }

    private void Widen(KvCache cache, int layer)
    {
        int n = cache.UsedEnd * cache.KvDim;
        if (_keys.Length < n)
        {
            // Sized to the whole cache once (one layer's worth, 1/LayerCount of the cache in f32 x2): it never grows
            // again, however many chunks or tokens follow.
            _keys = new float[(long)cache.Capacity * cache.KvDim];
            _values = new float[(long)cache.Capacity * cache.KvDim];
        }
        var keys = cache.KeyData(layer);
        var values = cache.ValueData(layer);
        var wk = _keys;
        var wv = _values;
        const int chunk = 16384;
        Workers.For((n + chunk - 1) / chunk, Threads, (start, end) =>
        {
            int from = start * chunk, to = Math.Min(n, end * chunk);
            ToFloat(keys.AsSpan(from, to - from), wk.AsSpan(from, to - from));
            ToFloat(values.AsSpan(from, to - from), wv.AsSpan(from, to - from));
        });
    }

    // ---------------------------------------------------------------- per-cell path (ggml's one_chunk)

    /// <summary>Online-softmax state of the query heads that share one key/value head.</summary>
    private PerCellState TakePerCell() => _perCell.TryTake(out var s) ? s : PerCellState.Create(_group, _headDim);

    private sealed class PerCellState
    {
        public float[] Query = [], Acc = [], M = [], S = [];
        public int Heads, HeadDim;

        public static PerCellState Create(int heads, int headDim) => new()
        {
            Heads = heads, HeadDim = headDim, Query = new float[heads * headDim], Acc = new float[heads * headDim],
            M = new float[heads], S = new float[heads],
        };

        public void Reset()
        {
            Array.Fill(M, float.NegativeInfinity);
            Array.Clear(S);
            Array.Clear(Acc);
        }

        /// <summary>V /= S, as ggml: a multiply by <c>1/S</c> (0 when S is 0).</summary>
        public void Finish(Span<float> output)
        {
            for (int h = 0; h < Heads; h++)
            {
                float inv = S[h] == 0f ? 0f : 1f / S[h];
                TensorPrimitives.Multiply(Acc.AsSpan(h * HeadDim, HeadDim), inv, output.Slice(h * HeadDim, HeadDim));
            }
        }
    }

    /// <summary>
    /// ggml's one_chunk loop over cells [<paramref name="from"/>, <paramref name="to"/>) for the query heads of key/value
    /// head <paramref name="g"/> (<paramref name="q"/>: their rows). Leaves M, S and the fp16-valued accumulator in
    /// <paramref name="st"/>.
    /// </summary>
    private void PerCell(KvCache cache, int layer, BatchToken token, int g, ReadOnlySpan<float> q, int from, int to, PerCellState st, bool vector)
    {
        int dk = _headDim, kvDim = cache.KvDim;
        for (int i = 0; i < q.Length; i++) st.Query[i] = Fp16.Round(q[i]);
        var seq = cache.CellSequences;
        var pos = cache.CellPositions;
        for (int c = from; c < to; c++)
        {
            if (seq[c] != token.Sequence || pos[c] > token.Position) continue;
            var key = _keys.AsSpan(c * kvDim + g * dk, dk);
            var value = _values.AsSpan(c * kvDim + g * dk, dk);
            for (int h = 0; h < _group; h++)
            {
                var acc = st.Acc.AsSpan(h * dk, dk);
                float s = (vector ? DotF16(key, st.Query.AsSpan(h * dk, dk)) : DotF16Reference(key, st.Query.AsSpan(h * dk, dk))) * _scale;
                float m = st.M[h], vs = 1f;
                if (s > m)
                {
                    st.M[h] = s;
                    float ms = MathF.Exp(m - s);
                    ScaleHalf(acc, ms, vector);
                    // ggml's compiled code multiplies S by ms, then adds vs = 1 (not fused).
                    st.S[h] = st.S[h] * ms + 1f;
                }
                else
                {
                    vs = MathF.Exp(s - m);
                    st.S[h] += vs;
                }
                MadHalf(acc, value, vs, vector);
            }
        }
    }

    private void Split(KvCache cache, int layer, BatchToken token, float[] q, float[] output, bool vector)
    {
        int padded = cache.PaddedLength, used = cache.UsedEnd, chunks = Threads, dk = _headDim;
        int chunk = (padded + chunks - 1) / chunks;
        var partM = new float[chunks * _heads];
        var partS = new float[chunks * _heads];
        var partAcc = new float[chunks * _heads * dk];
        Workers.For(chunks * _kvHeads, Threads, (start, end) =>
        {
            var state = TakePerCell();
            for (int job = start; job < end; job++)
            {
                int ch = job / _kvHeads, g = job % _kvHeads;
                state.Reset();
                PerCell(cache, layer, token, g, q.AsSpan(g * _group * dk, _group * dk), Math.Min(ch * chunk, used), Math.Min((ch + 1) * chunk, used), state, vector);
                state.M.CopyTo(partM, ch * _heads + g * _group);
                state.S.CopyTo(partS, ch * _heads + g * _group);
                state.Acc.CopyTo(partAcc, (ch * _heads + g * _group) * dk);
            }
            _perCell.Add(state);
        });
        // ggml_flash_attn_ext_reduce_partials: chunks merged in order; the compiled code fuses acc*scale_old + (chunk*scale_new).
        var acc = new float[dk];
        for (int h = 0; h < _heads; h++)
        {
            float m = float.NegativeInfinity, s = 0f;
            Array.Clear(acc);
            for (int ch = 0; ch < chunks; ch++)
            {
                if (ch * chunk >= padded) continue;
                float sc = partS[ch * _heads + h];
                if (sc == 0f) continue;
                float mc = partM[ch * _heads + h];
                float mNew = MathF.Max(m, mc);
                float scaleOld = MathF.Exp(m - mNew), scaleNew = MathF.Exp(mc - mNew);
                var part = partAcc.AsSpan((ch * _heads + h) * dk, dk);
                for (int d = 0; d < dk; d++) acc[d] = MathF.FusedMultiplyAdd(acc[d], scaleOld, part[d] * scaleNew);
                s = MathF.FusedMultiplyAdd(s, scaleOld, sc * scaleNew);
                m = mNew;
            }
            var o = output.AsSpan(h * dk, dk);
            if (s != 0f) TensorPrimitives.Multiply(acc, 1f / s, o);
            else acc.CopyTo(o);
        }
    }

    // ---------------------------------------------------------------- tiled path

    /// <summary>
    /// The tiled path for the query rows of tokens [<paramref name="t0"/>, <paramref name="t1"/>) and the heads of
    /// key/value head <paramref name="g"/>: rows are held in vector lanes (64 at a time), so a key or value row is widened
    /// once for all of them. Every per-row operation is ggml's, in ggml's order.
    /// </summary>
    private void TiledBlock(KvCache cache, int layer, BatchToken[] batch, int t0, int t1, int g, float[] q, float[] output)
    {
        var w = _tiled.TryTake(out var taken) ? taken : TiledScratch.Create(_headDim);
        try { TiledBlock(cache, layer, batch, t0, t1, g, q, output, w); }
        finally { _tiled.Add(w); }
    }

    private void TiledBlock(KvCache cache, int layer, BatchToken[] batch, int t0, int t1, int g, float[] q, float[] output, TiledScratch w)
    {
        int dk = _headDim, kvDim = cache.KvDim, qDim = _heads * dk, used = cache.UsedEnd;
        // Lanes: row r = (token t0 + r / group, head g*group + r % group); unused lanes see no cell.
        for (int r = 0; r < Rows; r++)
        {
            int t = t0 + r / _group;
            bool real = t < t1 && r < (t1 - t0) * _group;
            w.RowSeq[r] = real ? batch[t].Sequence : int.MinValue;
            w.RowPos[r] = real ? batch[t].Position : int.MinValue;
            int head = g * _group + r % _group;
            for (int d = 0; d < dk; d++) w.Qt[d * Rows + r] = real ? q[t * qDim + head * dk + d] : 0f;
        }
        Array.Fill(w.M, float.NegativeInfinity);
        Array.Clear(w.S);
        Array.Clear(w.Acc);
        var seq = cache.CellSequences;
        var pos = cache.CellPositions;
        var rowSeq = MemoryMarshal.Cast<int, Vector512<int>>(w.RowSeq.AsSpan());
        var rowPos = MemoryMarshal.Cast<int, Vector512<int>>(w.RowPos.AsSpan());
        var kq = MemoryMarshal.Cast<float, Vector512<float>>(w.Kq.AsSpan());
        var negInf = Vector512.Create(float.NegativeInfinity);
        Span<Vector512<float>> mNew = stackalloc Vector512<float>[RowVectors];
        Span<Vector512<float>> live = stackalloc Vector512<float>[RowVectors];
        Span<Vector512<float>> rise = stackalloc Vector512<float>[RowVectors];
        Span<Vector512<float>> p = stackalloc Vector512<float>[Lanes];

        for (int ic = 0; ic < used; ic += KvTile)
        {
            int cellsInTile = Math.Min(KvTile, used - ic);
            ulong seen = 0;
            for (int j = 0; j < cellsInTile; j++)
            {
                int c = ic + j;
                if (seq[c] < 0) continue;
                var cs = Vector512.Create(seq[c]);
                var cp = Vector512.Create(pos[c]);
                bool any = false;
                for (int v = 0; v < RowVectors; v++)
                {
                    var m = Vector512.Equals(rowSeq[v], cs) & Vector512.GreaterThanOrEqual(rowPos[v], cp);
                    w.Visible[j * RowVectors + v] = m;
                    any |= m != Vector512<int>.Zero;
                }
                if (any) seen |= 1UL << j;
            }
            if (seen == 0) continue;

            // Scores: one FMA chain over the head dimension per (cell, row), then times the scale; masked cells -inf.
            for (int j0 = 0; j0 < KvTile; j0 += 4)
            {
                ulong block = (seen >> j0) & 0xF;
                if (block == 0)
                {
                    for (int j = j0; j < j0 + 4; j++)
                        for (int v = 0; v < RowVectors; v++) kq[j * RowVectors + v] = negInf;
                    continue;
                }
                int row0 = (ic + j0) * kvDim + g * dk;
                Scores4(w, _keys, row0, Math.Min(row0 + kvDim, (used - 1) * kvDim + g * dk), Math.Min(row0 + 2 * kvDim, (used - 1) * kvDim + g * dk),
                    Math.Min(row0 + 3 * kvDim, (used - 1) * kvDim + g * dk), j0, dk);
                for (int j = j0; j < j0 + 4; j++)
                    for (int v = 0; v < RowVectors; v++)
                        kq[j * RowVectors + v] = (seen >> j & 1) == 0
                            ? negInf
                            : Vector512.ConditionalSelect(w.Visible[j * RowVectors + v].AsSingle(), kq[j * RowVectors + v] * _scale, negInf);
            }

            // Online softmax per row (lane).
            var mVec = MemoryMarshal.Cast<float, Vector512<float>>(w.M.AsSpan());
            var sVec = MemoryMarshal.Cast<float, Vector512<float>>(w.S.AsSpan());
            bool anyRise = false;
            for (int v = 0; v < RowVectors; v++)
            {
                var tileMax = negInf;
                for (int j = 0; j < KvTile; j++) tileMax = Vector512.Max(tileMax, kq[j * RowVectors + v]);
                live[v] = ~Vector512.Equals(tileMax, negInf);
                mNew[v] = Vector512.Max(mVec[v], tileMax);
                var r = Vector512.GreaterThan(mNew[v], mVec[v]);
                if (r != Vector512<float>.Zero)
                {
                    anyRise = true;
                    // ms = expf(Mold - Mnew) with libm, lane by lane; 1 where the maximum did not rise.
                    var ms = Vector512<float>.One;
                    for (int l = 0; l < Lanes; l++)
                        if (r.GetElement(l) != 0f) ms = ms.WithElement(l, MathF.Exp(mVec[v].GetElement(l) - mNew[v].GetElement(l)));
                    rise[v] = ms;
                    sVec[v] *= ms;
                }
                else rise[v] = Vector512<float>.One;
                mVec[v] = mNew[v];
            }
            var acc = MemoryMarshal.Cast<float, Vector512<float>>(w.Acc.AsSpan());
            if (anyRise)
                for (int d = 0; d < dk; d++)
                    for (int v = 0; v < RowVectors; v++) acc[d * RowVectors + v] *= rise[v];

            // Exponentials and their sum: 16-cell groups reduced by halving, then summed in double.
            for (int v = 0; v < RowVectors; v++)
            {
                var sumLo = Vector512<double>.Zero;
                var sumHi = Vector512<double>.Zero;
                for (int grp = 0; grp < KvTile / Lanes; grp++)
                {
                    for (int l = 0; l < Lanes; l++)
                    {
                        int j = grp * Lanes + l;
                        var e = Exp(kq[j * RowVectors + v] - mNew[v]) & live[v];
                        kq[j * RowVectors + v] = e;
                        p[l] = e;
                    }
                    for (int l = 0; l < 8; l++) p[l] = p[l + 8] + p[l];
                    for (int l = 0; l < 4; l++) p[l] = p[l + 4] + p[l];
                    var total = (p[0] + p[2]) + (p[1] + p[3]);
                    sumLo += Vector512.WidenLower(total);
                    sumHi += Vector512.WidenUpper(total);
                }
                sVec[v] = Vector512.Narrow(Vector512.WidenLower(sVec[v]) + sumLo, Vector512.WidenUpper(sVec[v]) + sumHi);
            }

            // Values: the accumulator takes one FMA per cell, in cell order.
            for (int d0 = 0; d0 < dk; d0 += 4) Values4(w, _values, ic * kvDim + g * dk + d0, kvDim, d0, seen);
        }

        for (int r = 0; r < (t1 - t0) * _group; r++)
        {
            int t = t0 + r / _group;
            int head = g * _group + r % _group;
            float s = w.S[r], inv = s == 0f ? 0f : 1f / s;
            var o = output.AsSpan(t * qDim + head * dk, dk);
            for (int d = 0; d < dk; d++) o[d] = w.Acc[d * Rows + r] * inv;
        }
    }

    /// <summary>Scores of cells j0..j0+3 for all 64 rows: four cells x four row vectors in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores4(TiledScratch w, float[] k, int k0, int k1, int k2, int k3, int j0, int dk)
    {
        var qt = MemoryMarshal.Cast<float, Vector512<float>>(w.Qt.AsSpan());
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        for (int d = 0; d < dk; d++)
        {
            var q0 = qt[d * 4]; var q1 = qt[d * 4 + 1]; var q2 = qt[d * 4 + 2]; var q3 = qt[d * 4 + 3];
            var b0 = Vector512.Create(k[k0 + d]);
            a00 = Vector512.FusedMultiplyAdd(b0, q0, a00); a01 = Vector512.FusedMultiplyAdd(b0, q1, a01);
            a02 = Vector512.FusedMultiplyAdd(b0, q2, a02); a03 = Vector512.FusedMultiplyAdd(b0, q3, a03);
            var b1 = Vector512.Create(k[k1 + d]);
            a10 = Vector512.FusedMultiplyAdd(b1, q0, a10); a11 = Vector512.FusedMultiplyAdd(b1, q1, a11);
            a12 = Vector512.FusedMultiplyAdd(b1, q2, a12); a13 = Vector512.FusedMultiplyAdd(b1, q3, a13);
            var b2 = Vector512.Create(k[k2 + d]);
            a20 = Vector512.FusedMultiplyAdd(b2, q0, a20); a21 = Vector512.FusedMultiplyAdd(b2, q1, a21);
            a22 = Vector512.FusedMultiplyAdd(b2, q2, a22); a23 = Vector512.FusedMultiplyAdd(b2, q3, a23);
            var b3 = Vector512.Create(k[k3 + d]);
            a30 = Vector512.FusedMultiplyAdd(b3, q0, a30); a31 = Vector512.FusedMultiplyAdd(b3, q1, a31);
            a32 = Vector512.FusedMultiplyAdd(b3, q2, a32); a33 = Vector512.FusedMultiplyAdd(b3, q3, a33);
        }
        var kq = MemoryMarshal.Cast<float, Vector512<float>>(w.Kq.AsSpan());
        int o = j0 * 4;
        kq[o] = a00; kq[o + 1] = a01; kq[o + 2] = a02; kq[o + 3] = a03;
        kq[o + 4] = a10; kq[o + 5] = a11; kq[o + 6] = a12; kq[o + 7] = a13;
        kq[o + 8] = a20; kq[o + 9] = a21; kq[o + 10] = a22; kq[o + 11] = a23;
        kq[o + 12] = a30; kq[o + 13] = a31; kq[o + 14] = a32; kq[o + 15] = a33;
    }

    /// <summary>
    /// Accumulates the weighted values of the seen cells of a tile into dimensions d0..d0+3 of all 64 rows
    /// (<paramref name="v0"/>: where dimension d0 of the tile's first cell is; cells are <paramref name="stride"/> apart).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Values4(TiledScratch w, float[] vrow, int v0, int stride, int d0, ulong seen)
    {
        var acc = MemoryMarshal.Cast<float, Vector512<float>>(w.Acc.AsSpan());
        var p = MemoryMarshal.Cast<float, Vector512<float>>(w.Kq.AsSpan());
        int o0 = d0 * 4, o1 = o0 + 4, o2 = o1 + 4, o3 = o2 + 4;
        var a00 = acc[o0]; var a01 = acc[o0 + 1]; var a02 = acc[o0 + 2]; var a03 = acc[o0 + 3];
        var a10 = acc[o1]; var a11 = acc[o1 + 1]; var a12 = acc[o1 + 2]; var a13 = acc[o1 + 3];
        var a20 = acc[o2]; var a21 = acc[o2 + 1]; var a22 = acc[o2 + 2]; var a23 = acc[o2 + 3];
        var a30 = acc[o3]; var a31 = acc[o3 + 1]; var a32 = acc[o3 + 2]; var a33 = acc[o3 + 3];
        while (seen != 0)
        {
            int j = System.Numerics.BitOperations.TrailingZeroCount(seen);
            seen &= seen - 1;
            var p0 = p[j * 4]; var p1 = p[j * 4 + 1]; var p2 = p[j * 4 + 2]; var p3 = p[j * 4 + 3];
            int vb = v0 + j * stride;
            var b0 = Vector512.Create(vrow[vb]);
            a00 = Vector512.FusedMultiplyAdd(b0, p0, a00); a01 = Vector512.FusedMultiplyAdd(b0, p1, a01);
            a02 = Vector512.FusedMultiplyAdd(b0, p2, a02); a03 = Vector512.FusedMultiplyAdd(b0, p3, a03);
            var b1 = Vector512.Create(vrow[vb + 1]);
            a10 = Vector512.FusedMultiplyAdd(b1, p0, a10); a11 = Vector512.FusedMultiplyAdd(b1, p1, a11);
            a12 = Vector512.FusedMultiplyAdd(b1, p2, a12); a13 = Vector512.FusedMultiplyAdd(b1, p3, a13);
            var b2 = Vector512.Create(vrow[vb + 2]);
            a20 = Vector512.FusedMultiplyAdd(b2, p0, a20); a21 = Vector512.FusedMultiplyAdd(b2, p1, a21);
            a22 = Vector512.FusedMultiplyAdd(b2, p2, a22); a23 = Vector512.FusedMultiplyAdd(b2, p3, a23);
            var b3 = Vector512.Create(vrow[vb + 3]);
            a30 = Vector512.FusedMultiplyAdd(b3, p0, a30); a31 = Vector512.FusedMultiplyAdd(b3, p1, a31);
            a32 = Vector512.FusedMultiplyAdd(b3, p2, a32); a33 = Vector512.FusedMultiplyAdd(b3, p3, a33);
        }
        acc[o0] = a00; acc[o0 + 1] = a01; acc[o0 + 2] = a02; acc[o0 + 3] = a03;
        acc[o1] = a10; acc[o1 + 1] = a11; acc[o1 + 2] = a12; acc[o1 + 3] = a13;
        acc[o2] = a20; acc[o2 + 1] = a21; acc[o2 + 2] = a22; acc[o2 + 3] = a23;
        acc[o3] = a30; acc[o3 + 1] = a31; acc[o3 + 2] = a32; acc[o3 + 3] = a33;
    }

    private sealed class TiledScratch
    {
        public int HeadDim;
        public float[] Qt = [], Kq = [], Acc = [];
        public float[] M = new float[Rows], S = new float[Rows];
        public int[] RowSeq = new int[Rows], RowPos = new int[Rows];
        public Vector512<int>[] Visible = new Vector512<int>[KvTile * RowVectors];

        public static TiledScratch Create(int headDim) => new()
        {
            HeadDim = headDim, Qt = new float[headDim * Rows], Kq = new float[KvTile * Rows], Acc = new float[headDim * Rows],
        };
    }

    /// <summary>The tiled path for one query row in scalar code, structured as ggml's loop (reference and fallback).</summary>
    private void TiledReference(KvCache cache, int layer, BatchToken[] batch, int t, int head, float[] q, float[] output)
    {
        int dk = _headDim, kvDim = cache.KvDim, qDim = _heads * dk, g = head / _group, used = cache.UsedEnd;
        var query = q.AsSpan(t * qDim + head * dk, dk);
        var seq = cache.CellSequences;
        var pos = cache.CellPositions;
        var acc = new float[dk];
        var kq = new float[KvTile];
        float m = float.NegativeInfinity, s = 0f;
        Span<float> p = stackalloc float[Lanes];
        for (int ic = 0; ic < used; ic += KvTile)
        {
            for (int j = 0; j < KvTile; j++)
            {
                int c = ic + j;
                kq[j] = float.NegativeInfinity;
                if (c >= used || seq[c] != batch[t].Sequence || pos[c] > batch[t].Position) continue;
                var row = _keys.AsSpan(c * kvDim + g * dk, dk);
                float a = 0f;
                for (int d = 0; d < dk; d++) a = MathF.FusedMultiplyAdd(row[d], query[d], a);
                kq[j] = a * _scale;
            }
            float tileMax = float.NegativeInfinity;
            foreach (float x in kq) tileMax = MathF.Max(tileMax, x);
            if (tileMax == float.NegativeInfinity) continue;
            float mNew = MathF.Max(m, tileMax);
            if (mNew > m)
            {
                float ms = MathF.Exp(m - mNew);
                for (int d = 0; d < dk; d++) acc[d] *= ms;
                s *= ms;
            }
            m = mNew;
            double sum = 0;
            for (int grp = 0; grp < KvTile / Lanes; grp++)
            {
                for (int l = 0; l < Lanes; l++) kq[grp * Lanes + l] = p[l] = Exp(kq[grp * Lanes + l] - mNew);
                sum += ReduceAdd16(p);
            }
            s = (float)(s + sum);
            for (int j = 0; j < KvTile; j++)
            {
                if (kq[j] == 0f) continue; // adds exact zeros
                var row = _values.AsSpan((ic + j) * kvDim + g * dk, dk);
                for (int d = 0; d < dk; d++) acc[d] = MathF.FusedMultiplyAdd(row[d], kq[j], acc[d]);
            }
        }
        float inv = s == 0f ? 0f : 1f / s;
        var o = output.AsSpan(t * qDim + head * dk, dk);
        for (int d = 0; d < dk; d++) o[d] = acc[d] * inv;
    }

    // ---------------------------------------------------------------- ggml's vector primitives, exactly

    /// <summary>
    /// Exact fp16-to-float widening of a run (F. Giesen's bit method, as <see cref="Fp16.ToFloat(ushort)"/>), 32 values
    /// per step: several times faster than <see cref="TensorPrimitives.ConvertToSingle(ReadOnlySpan{Half}, Span{float})"/>.
    /// </summary>
    internal static void ToFloat(ReadOnlySpan<ushort> h, Span<float> f)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated || Vector256.IsHardwareAccelerated)
        {
            ref ushort ph = ref MemoryMarshal.GetReference(h);
            ref float pf = ref MemoryMarshal.GetReference(f);
            for (; i + 32 <= h.Length; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref ph, (nuint)i));
                Widen(lo).StoreUnsafe(ref pf, (nuint)i);
                Widen(hi).StoreUnsafe(ref pf, (nuint)(i + 16));
            }
        }
        for (; i < h.Length; i++) f[i] = Fp16.ToFloat(h[i]);
    }

    private static Vector512<float> Widen(Vector512<uint> h)
    {
        var shiftedExp = Vector512.Create(0x7c00u << 13);
        var o = (h & Vector512.Create(0x7fffu)) << 13;
        var exp = o & shiftedExp;
        o += Vector512.Create((127u - 15) << 23);
        o = Vector512.ConditionalSelect(Vector512.Equals(exp, shiftedExp), o + Vector512.Create((128u - 16) << 23), o);
        var sub = ((o + Vector512.Create(1u << 23)).AsSingle() - Vector512.Create(1f / 16384f)).AsUInt32();
        o = Vector512.ConditionalSelect(Vector512.Equals(exp, Vector512<uint>.Zero), sub, o);
        return (o | (h & Vector512.Create(0x8000u)) << 16).AsSingle();
    }

    /// <summary>
    /// <c>_mm512_reduce_add_ps</c> as GCC expands it: upper 8 + lower 8, upper 4 + lower 4, then (0+2) + (1+3).
    /// </summary>
    private static float ReduceAdd16(ReadOnlySpan<float> v)
    {
        Span<float> a = stackalloc float[8];
        for (int l = 0; l < 8; l++) a[l] = v[l + 8] + v[l];
        for (int l = 0; l < 4; l++) a[l] = a[l + 4] + a[l];
        return (a[0] + a[2]) + (a[1] + a[3]);
    }

    private static float ReduceAdd16(Vector512<float> v)
    {
        var a = v.GetUpper() + v.GetLower();
        var b = a.GetUpper() + a.GetLower();
        return (b.GetElement(0) + b.GetElement(2)) + (b.GetElement(1) + b.GetElement(3));
    }

    /// <summary>
    /// <c>ggml_vec_dot_f16</c> (AVX-512 build) of a key and an fp16-rounded query, both widened: four 16-lane FMA
    /// accumulators over steps of 64, folded 0+2, 1+3, then 0+1, reduced as <see cref="ReduceAdd16(ReadOnlySpan{float})"/>;
    /// a tail beyond the last full step adds float products in double.
    /// </summary>
    internal static float DotF16(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        int n = x.Length, np = n & ~(F16Step - 1);
        var s0 = Vector512<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        for (int i = 0; i < np; i += F16Step)
        {
            s0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, (nuint)i), Vector512.LoadUnsafe(ref py, (nuint)i), s0);
            s1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, (nuint)(i + 16)), Vector512.LoadUnsafe(ref py, (nuint)(i + 16)), s1);
            s2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, (nuint)(i + 32)), Vector512.LoadUnsafe(ref py, (nuint)(i + 32)), s2);
            s3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, (nuint)(i + 48)), Vector512.LoadUnsafe(ref py, (nuint)(i + 48)), s3);
        }
        double sum = ReduceAdd16((s0 + s2) + (s1 + s3));
        for (int i = np; i < n; i++) sum += x[i] * y[i];
        return (float)sum;
    }

    /// <summary><see cref="DotF16"/> lane by lane.</summary>
    internal static float DotF16Reference(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        int n = x.Length, np = n & ~(F16Step - 1);
        Span<float> acc = stackalloc float[F16Step];
        acc.Clear();
        for (int i = 0; i < np; i += F16Step)
            for (int l = 0; l < F16Step; l++) acc[l] = MathF.FusedMultiplyAdd(x[i + l], y[i + l], acc[l]);
        Span<float> folded = stackalloc float[Lanes];
        for (int l = 0; l < Lanes; l++) folded[l] = (acc[l] + acc[32 + l]) + (acc[16 + l] + acc[48 + l]);
        double sum = ReduceAdd16(folded);
        for (int i = np; i < n; i++) sum += x[i] * y[i];
        return (float)sum;
    }

    /// <summary><c>ggml_vec_scale_f16</c>: each fp16 value times <paramref name="v"/>, rounded to fp16.</summary>
    private static void ScaleHalf(Span<float> y, float v, bool vector)
    {
        int i = 0;
        if (vector)
        {
            var vv = Vector512.Create(v);
            ref float py = ref MemoryMarshal.GetReference(y);
            for (; i + Lanes <= y.Length; i += Lanes)
                RoundHalf(Vector512.LoadUnsafe(ref py, (nuint)i) * vv).StoreUnsafe(ref py, (nuint)i);
        }
        for (; i < y.Length; i++) y[i] = Fp16.Round(y[i] * v);
    }

    /// <summary><c>ggml_vec_mad_f16</c>: y = fp16(fma(x, v, y)) (the compiled tail fuses too).</summary>
    private static void MadHalf(Span<float> y, ReadOnlySpan<float> x, float v, bool vector)
    {
        int i = 0;
        if (vector)
        {
            var vv = Vector512.Create(v);
            ref float py = ref MemoryMarshal.GetReference(y);
            ref float px = ref MemoryMarshal.GetReference(x);
            for (; i + Lanes <= y.Length; i += Lanes)
                RoundHalf(Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref px, (nuint)i), vv, Vector512.LoadUnsafe(ref py, (nuint)i))).StoreUnsafe(ref py, (nuint)i);
        }
        for (; i < y.Length; i++) y[i] = Fp16.Round(MathF.FusedMultiplyAdd(x[i], v, y[i]));
    }

    /// <summary>Rounds each lane to the nearest fp16 value (ties to even, overflow to infinity), kept as a float.</summary>
    internal static Vector512<float> RoundHalf(Vector512<float> x)
    {
        var u = x.AsUInt32();
        var sign = u & Vector512.Create(0x8000_0000u);
        var a = u & Vector512.Create(0x7FFF_FFFFu);
        // Normal halves: drop 13 mantissa bits, rounding to even (a carry may step the exponent).
        var normal = (a + Vector512.Create(0x0FFFu) + ((a >> 13) & Vector512<uint>.One)) & Vector512.Create(0xFFFF_E000u);
        normal = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(normal, Vector512.Create(0x4780_0000u)), Vector512.Create(0x7F80_0000u), normal);
        // Subnormal halves are multiples of 2^-24: adding 0.5 (whose ulp is 2^-24) rounds to that grid.
        var abs = a.AsSingle();
        var half = Vector512.Create(0.5f);
        var sub = ((abs + half) - half).AsUInt32();
        var r = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(0x3880_0000u)), sub, normal);
        r = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(a, Vector512.Create(0x7F80_0000u)), a, r);
        return (r | sign).AsSingle();
    }

    // ggml_v_expf (vec.h, AVX-512 variant) constants: 0x1.8p23, log2(e), ln2 split hi/lo, and the polynomial.
    private static readonly float ExpRound = BitConverter.UInt32BitsToSingle(0x4b400000);
    private static readonly float Log2E = BitConverter.UInt32BitsToSingle(0x3fb8aa3b);
    private static readonly float Ln2Hi = BitConverter.UInt32BitsToSingle(0x3f317200);
    private static readonly float Ln2Lo = BitConverter.UInt32BitsToSingle(0x35bfbe8e);
    private static readonly float P0 = BitConverter.UInt32BitsToSingle(0x3c072010);
    private static readonly float P1 = BitConverter.UInt32BitsToSingle(0x3d2b9f17);
    private static readonly float P2 = BitConverter.UInt32BitsToSingle(0x3e2aaf33);
    private static readonly float P3 = BitConverter.UInt32BitsToSingle(0x3efffedb);
    private static readonly float P4 = BitConverter.UInt32BitsToSingle(0x3f7ffff6);

    /// <summary>
    /// ggml's <c>ggml_v_expf</c> (AVX-512): n = round(x log2 e), b = x - n ln2 in two FMAs, a degree-5 polynomial j, then
    /// j 2^n (<c>_mm512_scalef_ps</c>, one rounding: here two exact-then-rounding power-of-two multiplies); 0 or infinity
    /// when |n| &gt; 192.
    /// </summary>
    internal static Vector512<float> Exp(Vector512<float> x)
    {
        var r = Vector512.Create(ExpRound);
        var z = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E), r);
        var n = z - r;
        var b = Vector512.FusedMultiplyAdd(-n, Vector512.Create(Ln2Lo), Vector512.FusedMultiplyAdd(-n, Vector512.Create(Ln2Hi), x));
        var u = b * b;
        var j = Vector512.FusedMultiplyAdd(
            Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.Create(P0), b, Vector512.Create(P1)), u,
                Vector512.FusedMultiplyAdd(Vector512.Create(P2), b, Vector512.Create(P3))),
            u, Vector512.FusedMultiplyAdd(Vector512.Create(P4), b, Vector512<float>.One));
        var big = Vector512.GreaterThan(Vector512.Abs(n), Vector512.Create(192f));
        var ni = Vector512.ConditionalSelect(big.AsInt32(), Vector512<int>.Zero, Vector512.ConvertToInt32(n));
        var n1 = ni >> 1;
        var n2 = ni - n1;
        var res = j * ((n1 + Vector512.Create(127)) << 23).AsSingle() * ((n2 + Vector512.Create(127)) << 23).AsSingle();
        if (big == Vector512<float>.Zero) return res;
        var alt = Vector512.ConditionalSelect(Vector512.LessThanOrEqual(n, Vector512<float>.Zero), Vector512<float>.Zero, Vector512.Create(float.PositiveInfinity));
        return Vector512.ConditionalSelect(big, alt, res);
    }

    /// <summary><see cref="Exp(Vector512{float})"/> for one lane.</summary>
    internal static float Exp(float x)
    {
        float z = MathF.FusedMultiplyAdd(x, Log2E, ExpRound);
        float n = z - ExpRound;
        float b = MathF.FusedMultiplyAdd(-n, Ln2Lo, MathF.FusedMultiplyAdd(-n, Ln2Hi, x));
        float u = b * b;
        float j = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(P0, b, P1), u, MathF.FusedMultiplyAdd(P2, b, P3)),
            u, MathF.FusedMultiplyAdd(P4, b, 1f));
        if (MathF.Abs(n) > 192f) return n <= 0f ? 0f : float.PositiveInfinity;
        int ni = (int)n, n1 = ni >> 1, n2 = ni - n1;
        return j * BitConverter.Int32BitsToSingle((n1 + 127) << 23) * BitConverter.Int32BitsToSingle((n2 + 127) << 23);
    }
}
