using Squeeze.Numerics;

namespace Squeeze.Models;

/// <summary>
/// The key/value cache: <see cref="Capacity"/> cells shared by all sequences (llama.cpp's unified cache), each
/// holding one token's keys and values for every layer, in fp16 as llama.cpp stores them by default.
/// A token attends to the cells of its own sequence at positions up to its own.
/// </summary>
public sealed class KvCache
{
    private readonly ushort[][] _k, _v;
    private readonly int[] _position, _sequence;
    private int _searchFrom;

    public KvCache(Hyperparameters h, int capacity)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the cache needs at least one cell");
        Capacity = capacity;
        KvDim = h.HeadDim * h.KvHeadCount;
        _k = new ushort[h.LayerCount][];
        _v = new ushort[h.LayerCount][];
        for (int l = 0; l < h.LayerCount; l++)
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

    public void Clear()
    {
        Array.Fill(_sequence, -1);
        Used = 0;
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
            _searchFrom = c + 1;
            return c;
        }
        throw new InvalidOperationException($"the KV cache is full ({Capacity} cells)");
    }

    /// <summary>Cells visible to a token of <paramref name="sequence"/> at <paramref name="position"/> (causal mask), in cell order.</summary>
    internal int VisibleCells(int sequence, int position, Span<int> cells)
    {
        int n = 0;
        for (int c = 0; c < Capacity; c++)
            if (_sequence[c] == sequence && _position[c] <= position) cells[n++] = c;
        return n;
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
