using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Quants;

/// <summary>The grid-search tables of the 1- and 2-bit i-quants (ggml's <c>iq2xs_init_impl</c>).</summary>
public class Iq2SearchTests
{
    public static TheoryData<string> Tables() => new("IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1");

    private static Iq2Search Get(string name) => name switch
    {
        "IQ2_XXS" => Iq2Search.IQ2_XXS,
        "IQ2_XS" => Iq2Search.IQ2_XS,
        "IQ2_S" => Iq2Search.IQ2_S,
        _ => Iq2Search.IQ1,
    };

    private static int Nwant(string name) => name switch { "IQ2_S" => 1, "IQ1" => 3, _ => 2 };

    // The first 16 codes of ggml-quants.c's kgrid_2bit_256, kgrid_2bit_512, kgrid_2bit_1024 and kgrid_1bit_2048,
    // which Iq2Search derives from the ggml-common.h grids instead of storing.
    [Theory]
    [InlineData("IQ2_XXS", new[] { 0, 2, 5, 8, 10, 17, 20, 32, 34, 40, 42, 65, 68, 80, 88, 97 })]
    [InlineData("IQ2_XS", new[] { 0, 2, 5, 8, 10, 17, 20, 22, 25, 32, 34, 37, 40, 65, 68, 70 })]
    [InlineData("IQ2_S", new[] { 0, 2, 5, 8, 10, 17, 20, 22, 25, 32, 34, 37, 40, 65, 68, 70 })]
    [InlineData("IQ1", new[] { 0, 2, 5, 8, 10, 17, 21, 32, 34, 40, 42, 69, 81, 84, 86, 101 })]
    public void Grid_codes_are_ggmls(string name, int[] firstCodes)
    {
        var t = Get(name);
        for (int j = 0; j < firstCodes.Length; j++)
        {
            Assert.Equal(j, t.Map[firstCodes[j]]);
            int code = 0;
            for (int i = 0; i < 8; i++) code |= t.Levels[8 * j + i] << (2 * i);
            Assert.Equal(firstCodes[j], code);
        }
    }

    [Theory]
    [MemberData(nameof(Tables))]
    public void Neighbour_lists_hold_the_nearest_distances_in_order(string name)
    {
        var t = Get(name);
        int n = t.Grid.Length;
        int checkedLists = 0;
        for (int code = 0; code < Iq2Search.KMapSize; code += 7)
        {
            if (t.GridIndex(code) >= 0 || !Reachable(code)) continue;
            int off = t.NeighbourOffset(code);
            int num = t.Neighbours[off];
            var d2 = new int[n];
            for (int j = 0; j < n; j++)
                for (int i = 0; i < 8; i++)
                {
                    int diff = 2 * t.Levels[8 * j + i] + 1 - (2 * ((code >> (2 * i)) & 3) + 1);
                    d2[j] += diff * diff;
                }
            var distances = d2.Distinct().Order().Take(Nwant(name)).ToHashSet();
            var expected = Enumerable.Range(0, n).Where(j => distances.Contains(d2[j])).OrderBy(j => d2[j]).ThenBy(j => j).ToArray();
            Assert.Equal(expected, t.Neighbours.AsSpan(off + 1, num).ToArray().Select(v => (int)v).ToArray());
            checkedLists++;
        }
        Assert.True(checkedLists > 100);
    }

    [Fact]
    public void Tables_are_built_once_across_threads()
    {
        var seen = new Iq2Search[8];
        Parallel.For(0, seen.Length, i => seen[i] = Iq2Search.IQ2_XS);
        Assert.All(seen, s => Assert.Same(seen[0], s));
    }

    private static bool Reachable(int code)
    {
        for (int i = 0; i < 8; i++) if (((code >> (2 * i)) & 3) == 3) return false;
        return true;
    }
}
