namespace Squeeze.Oracle.Tests.Quants;

/// <summary>The kinds of rows every quantizer is checked on.</summary>
public enum RowKind
{
    Gaussian,
    /// <summary>Gaussian with about 1% of values 50x larger.</summary>
    HeavyTailed,
    Zero,
    /// <summary>Half-integers and integers hitting exact rounding ties of many scales.</summary>
    Ties,
    /// <summary>Gaussian scaled by 1e-30 (subnormal fp16 scales).</summary>
    Tiny,
    /// <summary>Gaussian scaled by 1e30 (scales that overflow fp16).</summary>
    Huge,
}

/// <summary>Seeded generators of test rows and importance weights.</summary>
public static class Rows
{
    public static float[] Make(RowKind kind, int nrows, int nPerRow, int seed)
    {
        var rng = new Random(seed);
        var x = new float[nrows * nPerRow];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = kind switch
            {
                RowKind.Gaussian => Gaussian(rng),
                RowKind.HeavyTailed => Gaussian(rng) * (rng.NextDouble() < 0.01 ? 50f : 1f),
                RowKind.Zero => 0f,
                RowKind.Ties => TieValue(rng, i),
                RowKind.Tiny => Gaussian(rng) * 1e-30f,
                RowKind.Huge => Gaussian(rng) * 1e30f,
                _ => throw new ArgumentOutOfRangeException(nameof(kind)),
            };
        }
        return x;
    }

    // Blocks of half-integers with a round maximum, so that scales like amax/127, amax/7 or amax/15 are exact
    // and many values fall exactly between two quantization levels.
    private static float TieValue(Random rng, int i)
    {
        int pos = i % 32;
        if (pos == 0) return 16f;                 // the block maximum, exact
        if (pos == 1) return -8f;
        return (rng.Next(-32, 33)) * 0.5f;        // multiples of 0.5 in [-16, 16]
    }

    /// <summary>Importance weights like an imatrix's mean squared activations: positive, spread over decades, a few zeros.</summary>
    public static float[] Importance(int nPerRow, int seed, bool withZeros = false)
    {
        var rng = new Random(seed ^ 0x5EED);
        var w = new float[nPerRow];
        for (int i = 0; i < w.Length; i++)
            w[i] = withZeros && rng.NextDouble() < 0.05 ? 0f : MathF.Exp(2f * Gaussian(rng));
        return w;
    }

    public static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }

    /// <summary>Row lengths from 256 to 11008 that are whole blocks: the shortest, a few in between, and 11008.</summary>
    public static int[] Lengths(int blockSize) =>
        new[] { 256, 256 + blockSize, 1024 + 3 * blockSize, 4096, 11008 }
            .Where(n => n % blockSize == 0).Distinct().ToArray();
}
