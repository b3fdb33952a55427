using Squeeze.Numerics;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Quants;

/// <summary>
/// The IQ3/IQ4 tables and search structures agree with each other, and the vectorised level search of the IQ4
/// quantizers equals ggml's binary search on every kind of input.
/// </summary>
[Collection(Iq3Iq4SimdCollection.Name)]
public class Iq3Iq4Tests
{
    [Fact]
    public void Iq3s_grid_bytes_are_the_odd_levels_of_kgrid_512()
    {
        var t = Iq3Search.Grid512;
        for (int g = 0; g < 512; g++)
            for (int i = 0; i < 4; i++)
                Assert.Equal(t.Points[4 * g + i], (sbyte)(byte)(Iq3Grids.Iq3sGrid[g] >> 8 * i));
    }

    [Fact]
    public void Iq3xxs_grid_bytes_follow_kgrid_256()
    {
        // IQ3_XXS stores 4*(2l+1) for l = 0..6 and 62 (not 60) for l = 7.
        ReadOnlySpan<byte> byLevel = [4, 12, 20, 28, 36, 44, 52, 62];
        for (int g = 0; g < 256; g++)
            for (int i = 0; i < 4; i++)
                Assert.Equal(byLevel[(Iq3Grids.KGrid256[g] >> 3 * i) & 7], (byte)(Iq3Grids.Iq3xxsGrid[g] >> 8 * i));
    }

    [Theory]
    [InlineData(256, 2)]
    [InlineData(512, 3)]
    public void Neighbour_lists_hold_the_nearest_grid_points_nearest_first(int gridSize, int nwant)
    {
        var t = gridSize == 256 ? Iq3Search.Grid256 : Iq3Search.Grid512;
        int onGrid = 0;
        for (int u = 0; u < 4096; u++)
        {
            if (t.Map[u] >= 0)
            {
                onGrid++;
                int g = t.Map[u];
                for (int i = 0; i < 4; i++) Assert.Equal(2 * ((u >> 3 * i) & 7) + 1, t.Points[4 * g + i]);
                continue;
            }
            int offset = -t.Map[u] - 1;
            int count = t.Neighbours[offset];
            var d2 = new int[gridSize];
            for (int g = 0; g < gridSize; g++)
                for (int i = 0; i < 4; i++)
                {
                    int diff = t.Points[4 * g + i] - (2 * ((u >> 3 * i) & 7) + 1);
                    d2[g] += diff * diff;
                }
            var distances = d2.Distinct().Order().Take(nwant).ToHashSet();
            var expected = Enumerable.Range(0, gridSize).Where(g => distances.Contains(d2[g]))
                .OrderBy(g => d2[g]).ThenBy(g => g).ToArray();
            var actual = t.Neighbours.AsSpan(offset + 1, count).ToArray().Select(v => (int)v).ToArray();
            Assert.Equal(expected, actual);

            // The SIMD copy of the list: four rows of eight levels (0..7) per chunk of eight candidates.
            int start = t.LaneStart[u];
            for (int j = 0; j < count; j++)
                for (int i = 0; i < 4; i++)
                    Assert.Equal((t.Points[4 * actual[j] + i] - 1) / 2, t.NeighbourLanes[start + 32 * (j / 8) + 8 * i + j % 8]);
        }
        Assert.Equal(gridSize, onGrid);
    }

    public static TheoryData<SimdLevel> SimdLevels() => new(Enum.GetValues<SimdLevel>().Where(l => l != SimdLevel.Scalar && Simd.IsSupported(l)));

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(SimdLevels))]
    public void Iq4_levels_at_every_level_equal_the_binary_search(SimdLevel level)
    {
        var xs = new List<float> { float.NaN, -float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, -float.MaxValue,
            3e9f, -3e9f, 2147483648f, -2147483904f, 0f, -0f, float.Epsilon, -float.Epsilon };
        var values = Iq4Values.KValues;
        for (int k = 0; k < 16; k++)
        {
            foreach (float v in new float[] { values[k], k < 15 ? (values[k] + values[k + 1]) * 0.5f : values[k] + 1 })
            {
                xs.Add(v);
                xs.Add(MathF.BitIncrement(v));
                xs.Add(MathF.BitDecrement(v));
            }
        }
        var rng = new Random(42);
        for (int i = 0; i < 20000; i++) xs.Add((float)(rng.NextDouble() * 300 - 150));
        for (int i = 0; i < 2000; i++) xs.Add(rng.Next(-140, 141) * 0.5f);
        while (xs.Count % 32 != 0) xs.Add(0);

        var x = xs.ToArray();
        var expected = new byte[x.Length];
        for (int i = 0; i < x.Length; i++) expected[i] = (byte)Iq4Quantizer.BestIndex(values, x[i]);
        var actual = new byte[x.Length];
        using (Simd.Override(level))
            for (int b = 0; b < x.Length; b += 32) Iq4Quantizer.Levels(x.AsSpan(b, 32), 1f, actual.AsSpan(b, 32));
        for (int i = 0; i < x.Length; i++)
            Assert.True(expected[i] == actual[i], $"x = {x[i]:R}: binary search {expected[i]}, {level} {actual[i]}");
    }

    [Theory]
    [InlineData(GgmlType.IQ3_XXS)]
    [InlineData(GgmlType.IQ3_S)]
    [InlineData(GgmlType.IQ4_NL)]
    [InlineData(GgmlType.IQ4_XS)]
    public void Rows_quantized_on_many_threads_equal_rows_quantized_on_one(GgmlType type)
    {
        // Kernels keep no state between calls; the IQ3 search tables are built once, on first use, by whichever thread comes first.
        const int rows = 16, n = 1024;
        var rng = new Random(5);
        var x = new float[rows * n];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        int rowSize = (int)GgmlTypes.RowSize(type, n);
        var sequential = new byte[rows * rowSize];
        QuantKernels.Quantize(type, x, sequential, rows, n);
        var parallel = new byte[rows * rowSize];
        Parallel.For(0, rows, new ParallelOptions { MaxDegreeOfParallelism = 4 },
            r => QuantKernels.Get(type).QuantizeRow(x.AsSpan(r * n, n), parallel.AsSpan(r * rowSize, rowSize), default));
        Assert.Equal(sequential, parallel);
    }

    [Theory]
    [InlineData(GgmlType.IQ3_XXS)]
    [InlineData(GgmlType.IQ3_S)]
    public void Iq3_refuses_rows_whose_squares_overflow_at_every_level(GgmlType type)
    {
        // ggml aborts the process here (GGML_ASSERT in iq3_find_best_neighbour): every search error is Inf or NaN.
        var rng = new Random(1);
        var x = new float[256];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5) * 2e30f;
        foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
        {
            using var _ = Simd.Override(level);
            Assert.Throws<InvalidOperationException>(() => QuantKernels.Quantize(type, x, new byte[GgmlTypes.RowSize(type, 256)], 1, 256));
        }
    }

    [Theory]
    [InlineData(GgmlType.IQ3_XXS)]
    [InlineData(GgmlType.IQ3_S)]
    [InlineData(GgmlType.IQ4_NL)]
    [InlineData(GgmlType.IQ4_XS)]
    public void Quantized_rows_dequantize_close_to_the_input(GgmlType type)
    {
        const int n = 4096;
        var rng = new Random(3);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var kernel = QuantKernels.Get(type);
        var q = new byte[GgmlTypes.RowSize(type, n)];
        kernel.QuantizeRow(x, q, default);
        var y = new float[n];
        kernel.DequantizeRow(q, y);
        double err = 0, sig = 0;
        for (int i = 0; i < n; i++) { err += (x[i] - y[i]) * (double)(x[i] - y[i]); sig += x[i] * (double)x[i]; }
        // Relative RMS error of a 3-bit (about 0.2) or 4-bit (about 0.1) quantizer on Gaussian data; far above means broken.
        Assert.InRange(Math.Sqrt(err / sig), 0.0, type is GgmlType.IQ4_NL or GgmlType.IQ4_XS ? 0.15 : 0.3);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class Iq3Iq4SimdCollection
{
    public const string Name = "IQ3/IQ4 SIMD level overrides";
}
