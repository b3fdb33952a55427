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
            var (mutant, what) = GgufMutator.Mutate(original, boundaries, rng);
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
        // About 25 µs a read on a quiet 2-core machine, 3 ms with a load average of 17 (measured); the limit catches
        // blow-ups (a read that allocates or loops by a count in the file), not machine load: 15 ms a read.
        Assert.True(total.Elapsed < TimeSpan.FromMilliseconds(15 * MutationsPerBase), $"{MutationsPerBase} reads took {total.Elapsed.TotalSeconds:F1} s");
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
}
