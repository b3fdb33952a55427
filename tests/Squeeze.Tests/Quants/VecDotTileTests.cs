using Squeeze.Numerics;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Quants;

/// <summary>
/// The tiled matrix-matrix kernels (<see cref="IQuantKernel.VecDotTile"/>) equal one <see cref="IQuantKernel.VecDot"/>
/// per product bit for bit, for every registered type at every SIMD level, on tiles with register-block edges and on a single column (generation).
/// </summary>
[Collection(Iq3Iq4SimdCollection.Name)]
public class VecDotTileTests
{
    public static TheoryData<string> Types() =>
        new(Enumerable.Range(0, GgmlTypes.Count).Select(t => QuantKernels.Find((GgmlType)t)).OfType<IQuantKernel>()
            .Where(k => QuantKernels.Find(k.VecDotType) is not null).Select(k => k.Type.Name()));

    [Theory]
    [MemberData(nameof(Types))]
    public void Tile_equals_vec_dot_at_every_level(string typeName)
    {
        Assert.True(GgmlTypes.TryParse(typeName, out var type));
        var kernel = QuantKernels.Get(type);
        var actKernel = QuantKernels.Get(kernel.VecDotType);
        // 17 blocks of 256 cross the decode-once tiles' group of 16 blocks; 67 columns cross their chunk of 64.
        foreach (var (n, rows, cols) in new[] { (512, 11, 9), (1024, 11, 9), (512, 5, 1), (4352, 3, 3), (256, 2, 67) })
        {
            int sStride = rows + 3;
            int xRow = checked((int)GgmlTypes.RowSize(type, n)), yRow = checked((int)GgmlTypes.RowSize(kernel.VecDotType, n));
            var rng = new Random(n + (int)type);
            var x = new byte[rows * xRow];
            var y = new byte[cols * yRow];
            var importance = new float[n];
            Array.Fill(importance, 1f);
            var f = new float[n];
            for (int r = 0; r < rows; r++)
            {
                Fill(f, rng, r == 3 ? 0f : 1f); // one zero row
                kernel.QuantizeRow(f, x.AsSpan(r * xRow, xRow), kernel.RequiresImportance ? importance : default);
            }
            for (int t = 0; t < cols; t++)
            {
                Fill(f, rng, t == 5 ? 100f : 1f); // one large-scale activation row
                actKernel.QuantizeActivationRow(f, y.AsSpan(t * yRow, yRow));
            }
            foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
            {
                using var _ = Simd.Override(level);
                var s = new float[cols * sStride];
                Array.Fill(s, float.NaN);
                kernel.VecDotTile(x, xRow, rows, y, yRow, cols, n, s, sStride);
                for (int t = 0; t < cols; t++)
                    for (int r = 0; r < rows; r++)
                    {
                        float expected = kernel.VecDot(x.AsSpan(r * xRow, xRow), y.AsSpan(t * yRow, yRow), n);
                        float actual = s[t * sStride + r];
                        Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual),
                            $"{typeName} n={n} {level}: row {r} column {t}: tile {actual:R}, vec_dot {expected:R}");
                    }
                for (int t = 0; t < cols; t++)
                    for (int r = rows; r < sStride && t * sStride + r < s.Length; r++)
                        Assert.True(float.IsNaN(s[t * sStride + r]), $"{typeName} {level}: wrote outside the tile at column {t}, row {r}");
            }
        }
    }

    /// <summary>
    /// The same on activation rows of random quant bytes (every byte value, -128 included, and group sums that need
    /// not match the quants), with finite scales: the tiles' integer steps equal the vec_dot's for any bytes.
    /// </summary>
    public static TheoryData<string> IntegerTypes() =>
        new(Types().Select(row => row.Data).Where(name => GgmlTypes.TryParse(name, out var t)
            && QuantKernels.Get(t).VecDotType is GgmlType.Q8_0 or GgmlType.Q8_1 or GgmlType.Q8_K));

    [Theory]
    [MemberData(nameof(IntegerTypes))]
    public void Tile_equals_vec_dot_on_random_activation_bytes(string typeName)
    {
        Assert.True(GgmlTypes.TryParse(typeName, out var type));
        var kernel = QuantKernels.Get(type);
        var (blockBytes, halves, singles) = kernel.VecDotType switch
        {
            GgmlType.Q8_0 => (34, new[] { 0 }, Array.Empty<int>()),
            GgmlType.Q8_1 => (36, new[] { 0, 2 }, Array.Empty<int>()),
            GgmlType.Q8_K => (292, Array.Empty<int>(), new[] { 0 }),
            _ => throw new InvalidOperationException($"{typeName}: no integer activation format"),
        };
        const int n = 512, rows = 6, cols = 5;
        int xRow = checked((int)GgmlTypes.RowSize(type, n)), yRow = checked((int)GgmlTypes.RowSize(kernel.VecDotType, n));
        var rng = new Random(7 + (int)type);
        var x = new byte[rows * xRow];
        var f = new float[n];
        var importance = new float[n];
        Array.Fill(importance, 1f);
        for (int r = 0; r < rows; r++)
        {
            Fill(f, rng, 1f);
            kernel.QuantizeRow(f, x.AsSpan(r * xRow, xRow), kernel.RequiresImportance ? importance : default);
        }
        var y = new byte[cols * yRow];
        rng.NextBytes(y);
        for (int o = 0; o < y.Length; o += blockBytes)
        {
            foreach (int h in halves) BitConverter.TryWriteBytes(y.AsSpan(o + h), (Half)(0.001f + (float)rng.NextDouble() * 0.01f));
            foreach (int h in singles) BitConverter.TryWriteBytes(y.AsSpan(o + h), 0.001f + (float)rng.NextDouble() * 0.01f);
        }
        foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
        {
            using var _ = Simd.Override(level);
            var s = new float[cols * rows];
            kernel.VecDotTile(x, xRow, rows, y, yRow, cols, n, s, rows);
            for (int t = 0; t < cols; t++)
                for (int r = 0; r < rows; r++)
                {
                    float expected = kernel.VecDot(x.AsSpan(r * xRow, xRow), y.AsSpan(t * yRow, yRow), n);
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(s[t * rows + r]),
                        $"{typeName} {level}: row {r} column {t}: tile {s[t * rows + r]:R}, vec_dot {expected:R}");
                }
        }
    }

    private static void Fill(float[] f, Random rng, float scale)
    {
        for (int i = 0; i < f.Length; i++)
            f[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
    }
}
