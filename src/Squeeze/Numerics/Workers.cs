namespace Squeeze.Numerics;

/// <summary>Splits work over a fixed number of threads in contiguous ranges.</summary>
public static class Workers
{
    /// <summary>The default thread count: the processors this process may use.</summary>
    public static int DefaultThreads => Environment.ProcessorCount;

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>) in about
    /// <paramref name="threads"/> x 4 contiguous ranges of at least <paramref name="minRange"/> items.
    /// </summary>
    public static void For(int count, int threads, Action<int, int> body, int minRange = 1)
    {
        if (count <= 0) return;
        int ranges = Math.Clamp(Math.Min(threads * 4, count / Math.Max(1, minRange)), 1, count);
        if (threads <= 1 || ranges == 1)
        {
            body(0, count);
            return;
        }
        Parallel.For(0, ranges, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            int start = (int)((long)count * i / ranges), end = (int)((long)count * (i + 1) / ranges);
            if (end > start) body(start, end);
        });
    }
}
