using Squeeze.Gguf;
using Squeeze.Tests.Gguf;
using Xunit;

namespace Squeeze.Oracle.Tests.Gguf;

/// <summary>
/// Seeded mutations of valid files, read by both readers: every file Squeeze accepts, gguf.cpp accepts too and reads
/// the same way (equivalently: whatever gguf.cpp rejects, Squeeze rejects), except for the layouts Squeeze knowingly
/// allows (tensor data in another order than the infos).
/// </summary>
/// <remarks>
/// Only files Squeeze accepts are handed to gguf.cpp, which aborts the process on some corrupt files (a non-u32
/// <c>general.alignment</c>, a zero in <c>ne[1..3]</c>); Squeeze rejects the first, the second is filtered here.
/// </remarks>
public sealed class GgufDifferentialFuzzTests : IDisposable
{
    private const int Mutations = 3000;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("squeeze-gguf-diff-");

    public GgufDifferentialFuzzTests() => OracleLibrary.EnsureLoaded();

    public void Dispose() => _dir.Delete(recursive: true);

    public static TheoryData<string> Bases() => new("sample", "synthetic");

    [Theory]
    [MemberData(nameof(Bases))]
    public void Files_Squeeze_accepts_are_read_alike_by_gguf_cpp(string baseName)
    {
        byte[] original;
        IReadOnlyList<long> boundaries;
        if (baseName == "sample")
        {
            var image = GgufSamples.Valid();
            (original, boundaries) = (image.ToArray(), image.Boundaries);
        }
        else
        {
            original = GgufSynthetic.Build(alignment: 16, ggufCpp: true).ToBytes();
            boundaries = Enumerable.Range(0, original.Length / 4).Select(i => 4L * i).ToArray();
        }

        var rng = new Random(1127);
        var path = Path.Combine(_dir.FullName, "mutant.gguf");
        int compared = 0, reordered = 0;
        for (int i = 0; i < Mutations; i++)
        {
            var (mutant, what) = GgufMutator.Mutate(original, boundaries, rng);
            GgufFile squeeze;
            try { squeeze = GgufFile.Read(mutant); }
            catch (GgufFormatException) { continue; }
            using (squeeze)
            {
                if (squeeze.Tensors.Any(t => t.Shape.Skip(1).Contains(0))) continue; // gguf.cpp would divide by zero
                File.WriteAllBytes(path, mutant);
                var llama = OracleGguf.Read(path);
                if (!IsCanonicalLayout(squeeze))
                {
                    Assert.True(llama is null, $"{baseName} mutation {i} ({what}): gguf.cpp accepted tensors out of order");
                    reordered++;
                    continue;
                }
                Assert.True(llama is not null, $"{baseName} mutation {i} ({what}): Squeeze accepts it, gguf.cpp rejects it");
                GgufOracleTests.AssertAgrees(squeeze, llama, $"{baseName} mutation {i} ({what})");
                compared++;
            }
        }
        Assert.True(compared > 100, $"only {compared} accepted mutants compared ({reordered} reordered)");
    }

    /// <summary>gguf.cpp's rule: tensor i starts where tensor i-1's data, padded to the alignment, ends.</summary>
    private static bool IsCanonicalLayout(GgufFile f)
    {
        long expected = 0;
        foreach (var t in f.Tensors)
        {
            if (t.Offset != expected) return false;
            expected += (t.ByteSize + f.Alignment - 1) / f.Alignment * f.Alignment;
        }
        return true;
    }
}
