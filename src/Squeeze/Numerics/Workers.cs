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
/// <c>threads - 1</c> background workers plus the calling thread. A job's items are claimed through an atomic
/// counter; workers wait for the next job by spinning for a short while, then on a monitor. The caller waits only
/// for workers that joined the job, never for one that has not been scheduled yet, so an oversubscribed machine
/// slows a job down to the caller's own pace at worst. One job runs at a time per pool; concurrent callers rent
/// separate pools.
/// </summary>
internal sealed class WorkerPool
{
    private static readonly ConcurrentDictionary<int, ConcurrentBag<WorkerPool>> Idle = new();

    // Spinning longer than this between jobs wastes a core that another process could use.
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs

    private readonly object _monitor = new();
    private readonly int _threads;
    private volatile Job? _job;
    private volatile int _generation;

    private sealed class Job(int count, Action<int> body)
    {
        public readonly int Count = count;
        public readonly Action<int> Body = body;
        public int Next, Active;
        public Exception? Error;

        public void Work()
        {
            try
            {
                for (int i; (i = Interlocked.Increment(ref Next) - 1) < Count;) Body(i);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref Error, e, null);
                Volatile.Write(ref Next, Count);
            }
        }
    }

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
        var job = new Job(count, body);
        _job = job;
        lock (_monitor)
        {
            _generation++;
            Monitor.PulseAll(_monitor);
        }
        job.Work();
        // Every item is claimed; wait for the workers still running one. A worker joins (Active + 1) before it
        // claims, so once Next has run out, Active = 0 means no item is still running.
        var spin = new SpinWait();
        while (Volatile.Read(ref job.Active) > 0) spin.SpinOnce(sleep1Threshold: -1);
        _job = null;
        if (job.Error is { } e) ExceptionDispatchInfo.Throw(e);
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
            if (_job is not { } job) continue;
            Interlocked.Increment(ref job.Active);
            job.Work();
            Interlocked.Decrement(ref job.Active);
        }
    }
}
