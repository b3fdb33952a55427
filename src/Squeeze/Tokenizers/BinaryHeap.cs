namespace Squeeze.Tokenizers;

/// <summary>Orders heap entries: <c>Before(a, b)</c> is true when <c>a</c> must come out first.</summary>
internal interface IHeapOrder<T>
{
    static abstract bool Before(in T a, in T b);
}

/// <summary>A reusable binary min-heap of structs whose order the JIT inlines (the merge queues of SPM and BPE
/// push and pop millions of entries for a long text). Entries that compare equal may come out in any order; the
/// tokenizers only queue such entries when either of them is stale, so the order between them does not matter.</summary>
internal sealed class BinaryHeap<T, TOrder> where T : struct where TOrder : IHeapOrder<T>
{
    private T[] _items = new T[64];

    public int Count { get; private set; }

    public void Clear() => Count = 0;

    public void Push(in T item)
    {
        if (Count == _items.Length) Array.Resize(ref _items, _items.Length * 2);
        int i = Count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (!TOrder.Before(item, _items[parent])) break;
            _items[i] = _items[parent];
            i = parent;
        }
        _items[i] = item;
    }

    public bool TryPop(out T item)
    {
        if (Count == 0)
        {
            item = default;
            return false;
        }
        item = _items[0];
        var last = _items[--Count];
        int i = 0;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= Count) break;
            if (child + 1 < Count && TOrder.Before(_items[child + 1], _items[child])) child++;
            if (!TOrder.Before(_items[child], last)) break;
            _items[i] = _items[child];
            i = child;
        }
        if (Count > 0) _items[i] = last;
        return true;
    }
}
