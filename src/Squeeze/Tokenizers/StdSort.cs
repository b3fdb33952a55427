namespace Squeeze.Tokenizers;

/// <summary>
/// libstdc++'s <c>std::sort</c> (introsort: median-of-three quicksort down to 16 elements, heapsort past the depth
/// limit, then insertion sort). It is not stable, and llama.cpp orders its special tokens with it, so where two
/// tokens have equal length only this exact algorithm gives llama.cpp's order.
/// </summary>
internal static class StdSort
{
    private const int Threshold = 16;

    /// <summary>Sorts <paramref name="a"/> so that no element is <paramref name="less"/> than one before it.</summary>
    public static void Sort(int[] a, Func<int, int, bool> less)
    {
        if (a.Length < 2) return;
        IntroLoop(a, 0, a.Length, 2 * Log2(a.Length), less);
        FinalInsertionSort(a, 0, a.Length, less);
    }

    private static void Swap(int[] a, int i, int j) => (a[i], a[j]) = (a[j], a[i]);

    private static int Log2(int n) => 31 - int.LeadingZeroCount(n);

    private static void IntroLoop(int[] a, int first, int last, int depth, Func<int, int, bool> less)
    {
        while (last - first > Threshold)
        {
            if (depth == 0)
            {
                HeapSort(a, first, last, less);
                return;
            }
            depth--;
            int cut = PartitionPivot(a, first, last, less);
            IntroLoop(a, cut, last, depth, less);
            last = cut;
        }
    }

    private static int PartitionPivot(int[] a, int first, int last, Func<int, int, bool> less)
    {
        int mid = first + (last - first) / 2;
        MoveMedianToFirst(a, first, first + 1, mid, last - 1, less);
        return UnguardedPartition(a, first + 1, last, first, less);
    }

    private static void MoveMedianToFirst(int[] a, int result, int x, int y, int z, Func<int, int, bool> less)
    {
        if (less(a[x], a[y]))
        {
            if (less(a[y], a[z])) Swap(a, result, y);
            else if (less(a[x], a[z])) Swap(a, result, z);
            else Swap(a, result, x);
        }
        else if (less(a[x], a[z])) Swap(a, result, x);
        else if (less(a[y], a[z])) Swap(a, result, z);
        else Swap(a, result, y);
    }

    private static int UnguardedPartition(int[] a, int first, int last, int pivot, Func<int, int, bool> less)
    {
        while (true)
        {
            while (less(a[first], a[pivot])) first++;
            last--;
            while (less(a[pivot], a[last])) last--;
            if (first >= last) return first;
            Swap(a, first, last);
            first++;
        }
    }

    private static void FinalInsertionSort(int[] a, int first, int last, Func<int, int, bool> less)
    {
        if (last - first > Threshold)
        {
            InsertionSort(a, first, first + Threshold, less);
            for (int i = first + Threshold; i < last; i++) UnguardedLinearInsert(a, i, less);
        }
        else InsertionSort(a, first, last, less);
    }

    private static void InsertionSort(int[] a, int first, int last, Func<int, int, bool> less)
    {
        if (first == last) return;
        for (int i = first + 1; i < last; i++)
        {
            if (less(a[i], a[first]))
            {
                int v = a[i];
                Array.Copy(a, first, a, first + 1, i - first);
                a[first] = v;
            }
            else UnguardedLinearInsert(a, i, less);
        }
    }

    private static void UnguardedLinearInsert(int[] a, int last, Func<int, int, bool> less)
    {
        int v = a[last];
        int next = last - 1;
        while (less(v, a[next]))
        {
            a[last] = a[next];
            last = next;
            next--;
        }
        a[last] = v;
    }

    private static void HeapSort(int[] a, int first, int last, Func<int, int, bool> less)
    {
        int len = last - first;
        if (len >= 2)
        {
            for (int parent = (len - 2) / 2; ; parent--)
            {
                AdjustHeap(a, first, parent, len, a[first + parent], less);
                if (parent == 0) break;
            }
        }
        while (last - first > 1)
        {
            last--;
            int v = a[last];
            a[last] = a[first];
            AdjustHeap(a, first, 0, last - first, v, less);
        }
    }

    private static void AdjustHeap(int[] a, int first, int hole, int len, int value, Func<int, int, bool> less)
    {
        int top = hole, child = hole;
        while (child < (len - 1) / 2)
        {
            child = 2 * (child + 1);
            if (less(a[first + child], a[first + child - 1])) child--;
            a[first + hole] = a[first + child];
            hole = child;
        }
        if ((len & 1) == 0 && child == (len - 2) / 2)
        {
            child = 2 * (child + 1);
            a[first + hole] = a[first + child - 1];
            hole = child - 1;
        }
        int parent = (hole - 1) / 2;
        while (hole > top && less(a[first + parent], value))
        {
            a[first + hole] = a[first + parent];
            hole = parent;
            parent = (hole - 1) / 2;
        }
        a[first + hole] = value;
    }
}
