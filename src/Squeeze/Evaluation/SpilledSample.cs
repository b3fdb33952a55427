namespace Squeeze.Evaluation;

/// <summary>
/// A growing list of floats kept in a temporary file rather than in memory, with exact order statistics (the k-th
/// smallest value) found by a two-pass radix selection: memory stays a few hundred KiB however many values there are.
/// The KL-divergence percentiles need every per-token value; this keeps a long run's memory independent of its length.
/// </summary>
public sealed class SpilledSample : IDisposable
{
    private const int BufferValues = 1 << 14;
    private readonly FileStream _file;
    private readonly float[] _buffer = new float[BufferValues];
    private int _buffered;

    public SpilledSample()
    {
        var path = Path.Combine(Path.GetTempPath(), $"squeeze-sample-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
    }

    /// <summary>Values added.</summary>
    public long Count { get; private set; }

    public void Add(float value)
    {
        _buffer[_buffered++] = value;
        Count++;
        if (_buffered == BufferValues) Flush();
    }

    private void Flush()
    {
        if (_buffered == 0) return;
        _file.Seek(0, SeekOrigin.End);
        _file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_buffer.AsSpan(0, _buffered)));
        _buffered = 0;
    }

    /// <summary>The values at the given ranks (0 = smallest) of the sorted sample, in the order asked.</summary>
    public float[] Select(IReadOnlyList<long> ranks)
    {
        foreach (var r in ranks)
            if (r < 0 || r >= Count) throw new ArgumentOutOfRangeException(nameof(ranks), r, $"rank outside 0..{Count - 1}");
        Flush();
        // Pass 1: counts per high 16 bits of the order-preserving key.
        var high = new long[65536];
        Scan(key => high[key >> 16]++);
        var bucketOf = new int[ranks.Count];
        var rankInBucket = new long[ranks.Count];
        for (int i = 0; i < ranks.Count; i++)
        {
            long r = ranks[i];
            int b = 0;
            while (r >= high[b]) r -= high[b++];
            bucketOf[i] = b;
            rankInBucket[i] = r;
        }
        // Pass 2: counts per low 16 bits inside each bucket that holds a wanted rank.
        var low = new Dictionary<int, long[]>();
        foreach (int b in bucketOf) low.TryAdd(b, new long[65536]);
        Scan(key =>
        {
            if (low.TryGetValue((int)(key >> 16), out var counts)) counts[key & 0xFFFF]++;
        });
        var result = new float[ranks.Count];
        for (int i = 0; i < ranks.Count; i++)
        {
            var counts = low[bucketOf[i]];
            long r = rankInBucket[i];
            int l = 0;
            while (r >= counts[l]) r -= counts[l++];
            result[i] = FromKey(((uint)bucketOf[i] << 16) | (uint)l);
        }
        return result;
    }

    private void Scan(Action<uint> visit)
    {
        var chunk = new float[BufferValues];
        _file.Seek(0, SeekOrigin.Begin);
        while (true)
        {
            int bytes = _file.ReadAtLeast(System.Runtime.InteropServices.MemoryMarshal.AsBytes(chunk.AsSpan()), chunk.Length * 4, throwOnEndOfStream: false);
            int n = bytes / 4;
            for (int i = 0; i < n; i++) visit(ToKey(chunk[i]));
            if (n < chunk.Length) break;
        }
    }

    /// <summary>A uint whose unsigned order is the floats' order (negative values flipped entirely, positive ones given the top bit).</summary>
    private static uint ToKey(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        return (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
    }

    private static float FromKey(uint key) =>
        BitConverter.UInt32BitsToSingle((key & 0x8000_0000u) != 0 ? key & 0x7FFF_FFFFu : ~key);

    public void Dispose() => _file.Dispose();
}
