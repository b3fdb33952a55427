using System.Buffers.Binary;
using System.Diagnostics;
using Squeeze.Gguf;
using Xunit;

namespace Squeeze.Tests.Gguf;

/// <summary>
/// Seeded random mutations of valid files: every read either succeeds or throws <see cref="GgufFormatException"/>,
/// quickly. A file that is accepted must be fully usable: its tensors lie inside it and it can be written again.
/// </summary>
public class GgufFuzzTests
{
    // Fixed by default so that a failure reproduces; SQUEEZE_FUZZ_SEED / SQUEEZE_FUZZ_COUNT explore further.
    private static readonly int Seed = int.Parse(Environment.GetEnvironmentVariable("SQUEEZE_FUZZ_SEED") ?? "20261127");
    private static readonly int MutationsPerBase = int.Parse(Environment.GetEnvironmentVariable("SQUEEZE_FUZZ_COUNT") ?? "4000");

    /// <summary>Values that break counts, lengths, type ids, offsets and sizes.</summary>
    private static readonly ulong[] Extremes =
    [
        0, 1, 2, 3, 4, 5, 7, 8, 12, 13, 31, 32, 33, 42, 43, 63, 64, 65, 255, 256, 1000, 0x7FFF, 0xFFFF,
        0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1UL << 32, (1UL << 30) + 1, 1UL << 40, 1UL << 62,
        0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE,
    ];

    public static TheoryData<string> Bases() => new("sample", "synthetic");

    private static (byte[] Bytes, IReadOnlyList<long> Boundaries) Base(string name)
    {
        if (name == "sample")
        {
            var image = GgufSamples.Valid();
            return (image.ToArray(), image.Boundaries);
        }
        // The writer's output has no field map: mutate at every 4-byte step and at random positions instead.
        var bytes = GgufSynthetic.Build(alignment: 16).ToBytes();
        return (bytes, Enumerable.Range(0, bytes.Length / 4).Select(i => 4L * i).ToArray());
    }

    [Theory]
    [MemberData(nameof(Bases))]
    public void Mutated_files_are_read_or_rejected_with_GgufFormatException(string baseName)
    {
        var (original, boundaries) = Base(baseName);
        using (GgufFile.Read(original)) { } // the base itself is valid

        var rng = new Random(Seed);
        var total = Stopwatch.StartNew();
        var slowest = TimeSpan.Zero;
        int accepted = 0, rejected = 0;
        for (int i = 0; i < MutationsPerBase; i++)
        {
            var (mutant, what) = Mutate(original, boundaries, rng);
            var watch = Stopwatch.StartNew();
            try
            {
                using var file = GgufFile.Read(mutant);
                CheckAccepted(file, mutant);
                accepted++;
            }
            catch (GgufFormatException ex)
            {
                Assert.InRange(ex.Offset, 0, mutant.Length);
                rejected++;
            }
            catch (Exception ex)
            {
                Assert.Fail($"{baseName} seed {Seed} mutation {i} ({what}): {ex.GetType().Name}: {ex.Message}\n{ex.StackTrace}");
            }
            if (watch.Elapsed > slowest) slowest = watch.Elapsed;
        }
        Assert.True(slowest < TimeSpan.FromSeconds(1), $"slowest read took {slowest.TotalMilliseconds:F0} ms");
        Assert.True(total.Elapsed < TimeSpan.FromSeconds(10), $"{MutationsPerBase} reads took {total.Elapsed.TotalSeconds:F1} s");
        // The mutations must exercise both outcomes, or the test says little.
        Assert.True(accepted > 50 && rejected > 50, $"accepted {accepted}, rejected {rejected}");
    }

    /// <summary>What a reader that accepted a file promises: tensor data inside the file, and a writer can copy it.</summary>
    private static void CheckAccepted(GgufFile file, byte[] bytes)
    {
        Assert.InRange(file.DataOffset, 0, bytes.Length);
        foreach (var t in file.Tensors)
        {
            Assert.True(file.DataOffset + t.Offset + t.ByteSize <= bytes.Length, $"tensor '{t.Name}' ends past the file");
            Assert.Equal(0, t.Offset % file.Alignment);
            _ = file.GetTensorBytes(t).Length;
        }
        var copy = GgufWriter.CopyOf(file).ToBytes();
        using var again = GgufFile.Read(copy);
        Assert.Equal(file.Metadata.Count, again.Metadata.Count);
        for (int i = 0; i < file.Metadata.Count; i++)
        {
            Assert.Equal(file.Metadata[i].Key, again.Metadata[i].Key);
            Assert.True(file.Metadata[i].Value.Equals(again.Metadata[i].Value), file.Metadata[i].Key);
        }
        Assert.Equal(file.Tensors.Select(t => (t.Name, t.Type, string.Join(",", t.Shape))),
            again.Tensors.Select(t => (t.Name, t.Type, string.Join(",", t.Shape))));
        foreach (var t in file.Tensors)
            Assert.True(file.GetTensorBytes(t).SequenceEqual(again.GetTensorBytes(again.FindTensor(t.Name)!)), t.Name);
    }

    private static (byte[] Bytes, string What) Mutate(byte[] original, IReadOnlyList<long> boundaries, Random rng)
    {
        var bytes = (byte[])original.Clone();
        var what = new List<string>();
        int steps = rng.Next(4) == 0 ? rng.Next(2, 5) : 1;
        for (int s = 0; s < steps; s++)
        {
            switch (rng.Next(6))
            {
                case 0: // flip bits
                {
                    int n = rng.Next(1, 5);
                    for (int k = 0; k < n && bytes.Length > 0; k++)
                    {
                        int at = rng.Next(bytes.Length);
                        bytes[at] ^= (byte)(1 << rng.Next(8));
                        what.Add($"flip@{at}");
                    }
                    break;
                }
                case 1: // random byte
                {
                    if (bytes.Length == 0) break;
                    int at = rng.Next(bytes.Length);
                    bytes[at] = (byte)rng.Next(256);
                    what.Add($"byte@{at}");
                    break;
                }
                case 2: // truncate
                {
                    int length = rng.Next(bytes.Length + 1);
                    bytes = bytes[..length];
                    what.Add($"cut@{length}");
                    break;
                }
                case 3: // insert bytes
                {
                    int at = rng.Next(bytes.Length + 1);
                    var extra = new byte[rng.Next(1, 17)];
                    rng.NextBytes(extra);
                    bytes = [.. bytes[..at], .. extra, .. bytes[at..]];
                    what.Add($"insert{extra.Length}@{at}");
                    break;
                }
                case 4: // delete bytes
                {
                    if (bytes.Length == 0) break;
                    int at = rng.Next(bytes.Length);
                    int n = Math.Min(rng.Next(1, 17), bytes.Length - at);
                    bytes = [.. bytes[..at], .. bytes[(at + n)..]];
                    what.Add($"delete{n}@{at}");
                    break;
                }
                default: // overwrite a field with an extreme value
                {
                    long at = boundaries[rng.Next(boundaries.Count)];
                    ulong v = Extremes[rng.Next(Extremes.Length)];
                    if (rng.Next(4) == 0) v = unchecked(v + (ulong)rng.Next(-2, 3));
                    int width = rng.Next(3) switch { 0 => 4, 1 => 8, _ => rng.Next(2) == 0 ? 1 : 2 };
                    if (at + width > bytes.Length) break;
                    Span<byte> le = stackalloc byte[8];
                    BinaryPrimitives.WriteUInt64LittleEndian(le, v);
                    le[..width].CopyTo(bytes.AsSpan((int)at));
                    what.Add($"set{width}@{at}={v:X}");
                    break;
                }
            }
        }
        return (bytes, string.Join(" ", what));
    }
}
