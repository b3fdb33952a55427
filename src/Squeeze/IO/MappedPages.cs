using System.Runtime.InteropServices;

namespace Squeeze.IO;

/// <summary>
/// Lets go of pages of a read-only memory-mapped file once they have been read. Pages of a mapping the process has
/// touched count in its resident memory until unmapped; a job that streams through a file many times larger than
/// memory (quantizing a model) releases each range when done so that its peak stays at a few slices. The data stays
/// in the page cache and reading the range again faults it back in, so releasing is always safe. Linux only (elsewhere
/// a no-op).
/// </summary>
public static unsafe partial class MappedPages
{
    private const int MADV_DONTNEED = 4;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(void* addr, nuint length, int advice);

    /// <summary>Releases the whole pages inside [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>).</summary>
    public static void Release(byte* start, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0) return;
        long page = Environment.SystemPageSize;
        long first = ((long)start + page - 1) / page * page, end = ((long)start + length) / page * page;
        if (end <= first) return;
        // Advice only: a failure (an unusual mapping) changes nothing but memory use.
        _ = madvise((void*)first, (nuint)(end - first), MADV_DONTNEED);
    }
}
