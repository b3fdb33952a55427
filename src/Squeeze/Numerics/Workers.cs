using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;

namespace Squeeze.Numerics;

/// <summary>
/// Splits work over a fixed pool of threads. The pool's workers spin briefly between jobs and then sleep, so the
/// many small jobs of a forward pass (one per matmul) do not pay for waking threads or for the thread pool's
/// scheduling, and an idle pool costs nothing.
/// </summary>
public static class Workers
{
    /// <summary>The default thread count: the physical cores this process may use (hyper-threads share a core's SIMD units).</summary>
    public static int DefaultThreads { get; } = DetectPhysicalCores();

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
        Each(ranges, threads, i =>
        {
            int start = (int)((long)count * i / ranges), end = (int)((long)count * (i + 1) / ranges);
            if (end > start) body(start, end);
        });
    }

    /// <summary>
    /// Runs <paramref name="body"/>(i) for every i in [0, <paramref name="count"/>) on <paramref name="threads"/> threads
    /// (the caller's included). Items are handed out in order, one at a time, to whichever thread is free.
    /// The first exception thrown by an item is rethrown here once every thread has stopped.
    /// </summary>
    public static void Each(int count, int threads, Action<int> body)
    {
        if (count <= 0) return;
        if (threads <= 1 || count == 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        var pool = WorkerPool.Rent(Math.Min(threads, count));
        try { pool.Run(count, body); }
        finally { WorkerPool.Return(pool); }
    }

    private static int DetectPhysicalCores()
    {
        int logical = Environment.ProcessorCount;
        try
        {
            // Linux: distinct (package, core) pairs among the online CPUs.
            const string root = "/sys/devices/system/cpu";
            if (!Directory.Exists(root)) return logical;
            var cores = new HashSet<(string, string)>();
            foreach (var dir in Directory.EnumerateDirectories(root, "cpu*"))
            {
                var name = Path.GetFileName(dir);
                if (name.Length < 4 || !int.TryParse(name.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out _)) continue;
                var core = Path.Combine(dir, "topology", "core_id");
                var package = Path.Combine(dir, "topology", "physical_package_id");
                if (!File.Exists(core)) continue;
                cores.Add((File.Exists(package) ? File.ReadAllText(package).Trim() : "0", File.ReadAllText(core).Trim()));
            }
            return cores.Count > 0 ? Math.Clamp(cores.Count, 1, logical) : logical;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return logical;
        }
    }
}

/// <summary>
/// <c>threads - 1</c> background workers plus the calling thread. A job is a count of items claimed through an
/// atomic counter; workers wait for the next job by spinning for a short while, then on a monitor.
/// One job runs at a time per pool; concurrent callers rent separate pools.
/// </summary>
internal sealed class WorkerPool
{
    private static readonly ConcurrentDictionary<int, ConcurrentBag<WorkerPool>> Idle = new();

    // Spinning longer than this between jobs wastes a core that another process could use.
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs

    private readonly object _monitor = new();
    private readonly int _threads;
    private Action<int>? _body;
    private int _count, _next, _pending;
    private volatile int _generation;
    private Exception? _error;

    private WorkerPool(int threads)
    {
        _threads = threads;
        for (int i = 1; i < threads; i++)
            new Thread(Loop) { IsBackground = true, Name = $"squeeze-worker-{i}" }.Start();
    }

    public static WorkerPool Rent(int threads) =>
        Idle.GetOrAdd(threads, _ => []).TryTake(out var pool) ? pool : new WorkerPool(threads);

    public static void Return(WorkerPool pool) => Idle[pool._threads].Add(pool);

    public void Run(int count, Action<int> body)
    {
        _body = body;
        _count = count;
        _next = 0;
        _error = null;
        Volatile.Write(ref _pending, _threads - 1);
        lock (_monitor)
        {
            _generation++;
            Monitor.PulseAll(_monitor);
        }
        Work();
        var spin = new SpinWait();
        while (Volatile.Read(ref _pending) > 0) spin.SpinOnce(sleep1Threshold: -1);
        _body = null;
        if (_error is { } e) ExceptionDispatchInfo.Throw(e);
    }

    private void Work()
    {
        var body = _body!;
        int count = _count;
        try
        {
            for (int i; (i = Interlocked.Increment(ref _next) - 1) < count;) body(i);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _error, e, null);
            Volatile.Write(ref _next, count);
        }
    }

    private void Loop()
    {
        int seen = 0;
        while (true)
        {
            long until = Stopwatch.GetTimestamp() + SpinTicks;
            while (_generation == seen && Stopwatch.GetTimestamp() < until) Thread.SpinWait(20);
            if (_generation == seen)
            {
                lock (_monitor)
                    while (_generation == seen) Monitor.Wait(_monitor);
            }
            seen = _generation;
            Work();
            Interlocked.Decrement(ref _pending);
        }
    }
}
