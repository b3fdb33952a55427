using Squeeze.Numerics;

namespace Squeeze.Models;

/// <summary>
/// The key/value cache: <see cref="Capacity"/> cells shared by all sequences (llama.cpp's unified cache), each
/// holding one token's keys and values for every layer, in fp16 as llama.cpp stores them by default.
/// A token attends to the cells of its own sequence at positions up to its own, visited in cell order as llama.cpp
/// visits them (see <see cref="Attention"/>).
/// </summary>
public sealed class KvCache
{
    private readonly ushort[][] _k, _v;
    private readonly int[] _position, _sequence;
    private int _searchFrom;

    public KvCache(Hyperparameters h, int capacity) : this(h.LayerCount, h.HeadDim * h.KvHeadCount, capacity)
    {
    }

    internal KvCache(int layers, int kvDim, int capacity)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the cache needs at least one cell");
        Capacity = capacity;
        KvDim = kvDim;
        _k = new ushort[layers][];
        _v = new ushort[layers][];
        for (int l = 0; l < layers; l++)
        {
            _k[l] = new ushort[(long)capacity * KvDim];
            _v[l] = new ushort[(long)capacity * KvDim];
        }
        _position = new int[capacity];
        _sequence = new int[capacity];
        Clear();
    }

    public int Capacity { get; }

    /// <summary>Key (and value) elements per token per layer: head size x key/value heads.</summary>
    public int KvDim { get; }

    /// <summary>Cells in use.</summary>
    public int Used { get; private set; }

    /// <summary>One past the highest cell in use (llama.cpp's <c>used_max_p1</c>): attention visits cells below it.</summary>
    internal int UsedEnd { get; private set; }

    /// <summary>
    /// The cell count llama.cpp's attention spans (<c>n_kv</c>): <see cref="UsedEnd"/> rounded up to 256, at least 256
    /// (its cache is padded to 256 cells, so its own size never caps this).
    /// </summary>
    internal int PaddedLength => Math.Max(256, (UsedEnd + 255) / 256 * 256);

    internal int[] CellSequences => _sequence;
    internal int[] CellPositions => _position;
    internal ushort[] KeyData(int layer) => _k[layer];
    internal ushort[] ValueData(int layer) => _v[layer];

    public void Clear()
    {
        Array.Fill(_sequence, -1);
        Used = 0;
        UsedEnd = 0;
        _searchFrom = 0;
    }

    /// <summary>Frees the cells of <paramref name="sequence"/> at positions &gt;= <paramref name="fromPosition"/>.</summary>
    public void RemoveSequence(int sequence, int fromPosition = 0)
    {
        for (int c = 0; c < Capacity; c++)
        {
            if (_sequence[c] == sequence && _position[c] >= fromPosition)
            {
                _sequence[c] = -1;
                Used--;
                _searchFrom = Math.Min(_searchFrom, c);
            }
        }
        while (UsedEnd > 0 && _sequence[UsedEnd - 1] < 0) UsedEnd--;
    }

    /// <summary>
    /// Gives <paramref name="destination"/> a copy of every cell of <paramref name="source"/> (keys, values and positions),
    /// in cell order, so that a prefix decoded once can be continued by several sequences (llama.cpp shares such cells
    /// between sequences with <c>llama_memory_seq_cp</c>; here they are duplicated, with the same values).
    /// </summary>
    public void CopySequence(int source, int destination)
    {
        if (source == destination) return;
        for (int c = 0; c < Capacity; c++)
        {
            if (_sequence[c] != source) continue;
            int copy = Allocate(destination, _position[c]);
            for (int l = 0; l < _k.Length; l++)
            {
                Keys(l, c).CopyTo(Keys(l, copy));
                Values(l, c).CopyTo(Values(l, copy));
            }
        }
    }

    /// <summary>Takes a free cell for a token of <paramref name="sequence"/> at <paramref name="position"/>.</summary>
    internal int Allocate(int sequence, int position)
    {
        for (int c = _searchFrom; c < Capacity; c++)
        {
            if (_sequence[c] >= 0) continue;
            _sequence[c] = sequence;
            _position[c] = position;
            Used++;
            UsedEnd = Math.Max(UsedEnd, c + 1);
            _searchFrom = c + 1;
            return c;
        }
        throw new InvalidOperationException($"the KV cache is full ({Capacity} cells)");
    }

    internal Span<ushort> Keys(int layer, int cell) => _k[layer].AsSpan(cell * KvDim, KvDim);
    internal Span<ushort> Values(int layer, int cell) => _v[layer].AsSpan(cell * KvDim, KvDim);

    internal void Store(int layer, int cell, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        var ks = Keys(layer, cell);
        var vs = Values(layer, cell);
        for (int i = 0; i < KvDim; i++)
        {
            ks[i] = Fp16.FromFloat(k[i]);
            vs[i] = Fp16.FromFloat(v[i]);
        }
    }
}
