using Squeeze.Numerics;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Oracle.Tests.Quants;

/// <summary>
/// Stricter checks for the float, ternary, 1/2-bit and FP4 formats than the shared conformance tests: their dot
/// products reproduce the oracle's x86 lane order, so they must equal ggml bit for bit at every SIMD level; and
/// the E8M0 / UE4M3 scale conversions are checked exhaustively or at their edges.
/// </summary>
[Collection(SimdCollection.Name)]
public class SimpleQuantsTests
{
    public SimpleQuantsTests() => OracleLibrary.EnsureLoaded();

    public static TheoryData<GgmlType> Types() => new(
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q1_0, GgmlType.Q2_0,
        GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4, GgmlType.NVFP4);

    [Theory(SkipTestWithoutData = true)]
    [MemberData(nameof(Types))]
    public void VecDot_is_bitwise_equal_to_ggml_at_every_level(GgmlType type)
    {
        var kernel = QuantKernels.Get(type);
        int block = Math.Max(GgmlTypes.Get(type).BlockSize, GgmlTypes.Get(kernel.VecDotType).BlockSize);
        foreach (int n in new[] { 256, 256 + block, 1024 + 3 * block, 4096, 11008, 64 * 1024 + block }.Where(n => n % block == 0))
        {
            for (int seed = 0; seed < 3; seed++)
            {
                // Random blocks, and rows ggml quantized itself (realistic codes and scales).
                var x1 = RandomBlocks.Make(type, n / GgmlTypes.Get(type).BlockSize, seed: n + seed);
                var x2 = Oracle.Quantize(type, Rows.Make(RowKind.HeavyTailed, 1, n, seed: seed + 5), 1, n);
                var y = Oracle.FromFloat(kernel.VecDotType, Rows.Make(RowKind.Gaussian, 1, n, seed: n * 7 + seed));
                foreach (var x in new[] { x1, x2 })
                {
                    float expected = Oracle.VecDot(type, x, y, n);
                    foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
                    {
                        using var _ = Simd.Override(level);
                        float actual = kernel.VecDot(x, y, n);
                        Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual),
                            $"{type} n={n} seed={seed} at {level}: ggml {expected:R}, squeeze {actual:R}");
                    }
                }
            }
        }
    }

    [Fact]
    public void F16_products_with_infinities_nans_and_edge_halves_equal_ggml_at_every_level()
    {
        // The vector paths widen halves by a rule that is exact only for finite ones and redo a row that holds an Inf
        // or NaN: rows with such halves (in the weight or the activation, in the body or the tail), and finite rows
        // at the edges of the rule (largest half, subnormals, zeros), as single products, single-column tiles
        // (generation) and wider tiles.
        var kernel = QuantKernels.Get(GgmlType.F16);
        var rng = new Random(21);
        foreach (int n in new[] { 1024, 1024 + 32 })
        {
            var cases = new List<(string Name, ushort[] X, ushort[] Y)>();
            ushort[] Row(float scale) => Enumerable.Range(0, n).Select(_ => Fp16.FromFloat(scale * Rows.Gaussian(rng))).ToArray();
            ushort[] With(ushort[] r, params (int At, ushort H)[] set) { var c = (ushort[])r.Clone(); foreach (var (at, h) in set) c[at] = h; return c; }
            var x = Row(1f);
            var y = Row(1f);
            cases.Add(("finite", x, y));
            cases.Add(("+Inf weight", With(x, (100, 0x7C00)), y));
            cases.Add(("-Inf weight in the last step", With(x, (n - 40, 0xFC00)), y));
            cases.Add(("+Inf and -Inf weights", With(x, (5, 0x7C00), (700, 0xFC00)), y));
            cases.Add(("signalling NaN weight", With(x, (300, 0x7C01)), y));
            cases.Add(("quiet NaN weight with sign", With(x, (17, 0xFE55)), y));
            cases.Add(("Inf activation", x, With(y, (64, 0x7C00))));
            cases.Add(("NaN activation", x, With(y, (1000, 0x7D00))));
            cases.Add(("Inf weight in the tail", With(x, (n - 1, 0x7C00)), y));
            cases.Add(("largest halves, subnormals and zeros", With(x, (0, 0x7BFF), (1, 0xFBFF), (2, 0x0001), (3, 0x8001), (4, 0x03FF), (5, 0x83FF), (6, 0x0000), (7, 0x8000), (8, 0x0400)),
                With(y, (0, 0x0001), (1, 0x7BFF), (2, 0x7BFF), (3, 0x3C00), (4, 0x3C00), (5, 0x0400), (6, 0x7BFF), (7, 0x7BFF))));
            cases.Add(("subnormal rows", Enumerable.Range(0, n).Select(i => (ushort)(rng.Next(0x400) | (i % 2) << 15)).ToArray(), Row(100f)));

            foreach (var (name, xs, ys) in cases)
            {
                var xb = System.Runtime.InteropServices.MemoryMarshal.AsBytes(xs.AsSpan()).ToArray();
                var yb = System.Runtime.InteropServices.MemoryMarshal.AsBytes(ys.AsSpan()).ToArray();
                float expected = Oracle.VecDot(GgmlType.F16, xb, yb, n);
                // Three weight rows (the case's row between two plain ones) against one and against three activation rows.
                var plain = System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()).ToArray();
                var xs3 = plain.Concat(xb).Concat(plain).ToArray();
                var ys3 = yb.Concat(yb).Concat(yb).ToArray();
                float expectedPlain = Oracle.VecDot(GgmlType.F16, plain, yb, n);
                foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
                {
                    using var _ = Simd.Override(level);
                    Same(expected, kernel.VecDot(xb, yb, n), $"{name} n={n} vec_dot at {level}");
                    foreach (int cols in new[] { 1, 3 })
                    {
                        var s = new float[3 * cols];
                        kernel.VecDotTile(xs3, 2 * n, 3, ys3, 2 * n, cols, n, s, 3);
                        for (int t = 0; t < cols; t++)
                        {
                            Same(expectedPlain, s[t * 3], $"{name} n={n} tile of {cols} at {level}, plain row 0");
                            Same(expected, s[t * 3 + 1], $"{name} n={n} tile of {cols} at {level}, column {t}");
                            Same(expectedPlain, s[t * 3 + 2], $"{name} n={n} tile of {cols} at {level}, plain row 2");
                        }
                    }
                }
            }
        }

        static void Same(float expected, float actual, string context) =>
            Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual) || (float.IsNaN(expected) && float.IsNaN(actual)),
                $"{context}: ggml {expected:R}, squeeze {actual:R}");
    }

    [Fact]
    public void Every_E8M0_code_decodes_as_in_ggml()
    {
        // 256 MXFP4 blocks, block e holding exponent e and every code 1 (value 1 after doubling): each weight is the scale.
        var q = new byte[256 * 17];
        for (int e = 0; e < 256; e++)
        {
            q[e * 17] = (byte)e;
            q.AsSpan(e * 17 + 1, 16).Fill(0x11);
        }
        var expected = Oracle.Dequantize(GgmlType.MXFP4, q, 256 * 32);
        var actual = new float[256 * 32];
        QuantKernels.Get(GgmlType.MXFP4).DequantizeRow(q, actual);
        BlockAssert.BitEqual(expected, actual, "mxfp4 all exponents");
        for (int e = 0; e < 256; e++) Assert.Equal(E8M0.ToFloatHalf((byte)e), actual[e * 32]);
        Assert.Equal(MathF.ScaleB(1f, -127), E8M0.ToFloat(0));
        Assert.Equal(2f, E8M0.ToFloat(128));
    }

    [Fact]
    public void Every_UE4M3_code_decodes_as_in_ggml()
    {
        // 64 NVFP4 blocks of four sub-block scales: all 256 codes, every weight code 1.
        var q = new byte[64 * 36];
        for (int b = 0; b < 64; b++)
        {
            for (int s = 0; s < 4; s++) q[b * 36 + s] = (byte)(b * 4 + s);
            q.AsSpan(b * 36 + 4, 32).Fill(0x11);
        }
        var expected = Oracle.Dequantize(GgmlType.NVFP4, q, 64 * 64);
        var actual = new float[64 * 64];
        QuantKernels.Get(GgmlType.NVFP4).DequantizeRow(q, actual);
        BlockAssert.BitEqual(expected, actual, "nvfp4 all scales");
    }

    [Fact]
    public void UE4M3_encoding_matches_ggml_at_its_edges()
    {
        // Sub-block maxima spread over the subnormal range, the rounding carries and the 448 clamp:
        // amax / 6 = v for v on a dense logarithmic sweep, each also one ulp either side.
        var values = new List<float>();
        for (double v = 1e-4; v < 2000; v *= 1.0137)
            foreach (float f in new[] { (float)v, MathF.BitDecrement((float)v), MathF.BitIncrement((float)v) }) values.Add(f * 6f);
        for (int k = 0; k < 256; k++)
        {
            float exact = UE4M3.ToFloatHalf((byte)k) * 2f; // a representable scale, and the midpoints above it
            values.Add(exact * 6f);
            values.Add(exact * 1.0625f * 6f);
        }
        int nsub = (values.Count + 3) / 4 * 4;
        var row = new float[nsub * 16];
        var rng = new Random(3);
        for (int s = 0; s < values.Count; s++)
            for (int j = 0; j < 16; j++) row[s * 16 + j] = j == s % 16 ? values[s] : (float)(rng.NextDouble() * 2 - 1) * values[s];
        int n = row.Length;
        var expected = Oracle.Quantize(GgmlType.NVFP4, row, 1, n);
        var actual = new byte[expected.Length];
        QuantKernels.Quantize(GgmlType.NVFP4, row, actual, 1, n);
        BlockAssert.Equal(GgmlType.NVFP4, expected, actual, "UE4M3 sweep");
    }

    [Fact]
    public void MXFP4_exponent_matches_ggml_next_to_powers_of_two()
    {
        // floor(log2f(amax)) is where a different log2 would show: maxima at and a few ulps around 2^k.
        var maxima = new List<float>();
        for (int k = -120; k <= 120; k++)
        {
            float p = MathF.ScaleB(1f, k);
            float lo = p, hi = p;
            maxima.Add(p);
            for (int u = 0; u < 4; u++)
            {
                lo = MathF.BitDecrement(lo);
                hi = MathF.BitIncrement(hi);
                maxima.Add(lo);
                maxima.Add(hi);
            }
        }
        var row = new float[maxima.Count * 32];
        for (int b = 0; b < maxima.Count; b++)
            for (int j = 0; j < 32; j++) row[b * 32 + j] = maxima[b] * (j == 7 ? -1f : (j % 5) / 5f);
        var expected = Oracle.Quantize(GgmlType.MXFP4, row, 1, row.Length);
        var actual = new byte[expected.Length];
        QuantKernels.Quantize(GgmlType.MXFP4, row, actual, 1, row.Length);
        BlockAssert.Equal(GgmlType.MXFP4, expected, actual, "amax next to powers of two");
    }

    [Theory]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.BF16)]
    public void Every_16_bit_float_dequantizes_as_in_ggml_at_every_level(GgmlType type)
    {
        // All 65536 codes, NaNs and infinities included: the vector paths must give the scalar bits.
        var q = new byte[65536 * 2];
        for (int h = 0; h < 65536; h++) { q[2 * h] = (byte)h; q[2 * h + 1] = (byte)(h >> 8); }
        var expected = Oracle.Dequantize(type, q, 65536);
        foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
        {
            using var _ = Simd.Override(level);
            var actual = new float[65536];
            QuantKernels.Get(type).DequantizeRow(q, actual);
            BlockAssert.BitEqual(expected, actual, $"{type} all codes at {level}");
        }
    }

    [Theory]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.BF16)]
    public void Special_floats_convert_as_in_ggml_at_every_level(GgmlType type)
    {
        // Signed zeros, infinities, NaNs with payloads, float subnormals, the half overflow edge (65504..65520),
        // half subnormals and exact ties of both formats, then random bit patterns.
        var specials = new List<float> { 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -float.Epsilon,
            float.MaxValue, float.MinValue, 65504f, 65519.996f, 65520f, -65520f, 6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f,
            2.9802326e-08f, 1.0009766f, 1.0004883f, 1.0014648f, 1.00390625f, 1.01171875f, 1.0078125f };
        foreach (uint bits in new uint[] { 0x7FC00000, 0xFFC00001, 0x7F800001, 0x7FBFFFFF, 0xFF812345, 0x00000001, 0x807FFFFF })
            specials.Add(BitConverter.UInt32BitsToSingle(bits));
        var rng = new Random(9);
        while (specials.Count % 64 != 0 || specials.Count < 4096)
            specials.Add(BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32)));
        var x = specials.ToArray();
        var expected = Oracle.Quantize(type, x, 1, x.Length);
        foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
        {
            using var _ = Simd.Override(level);
            var actual = new byte[expected.Length];
            QuantKernels.Quantize(type, x, actual, 1, x.Length);
            BlockAssert.Equal(type, expected, actual, $"special floats at {level}");
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Subnormal_and_non_finite_rows_quantize_as_in_ggml(GgmlType type)
    {
        // Blocks whose maximum is a float subnormal (1/amax overflows to infinity), blocks with an infinity, and
        // blocks mixing both: ggml's C conversions of non-finite values decide the bytes here.
        const int n = 4096;
        var rng = new Random(17);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            int region = i / 512;
            x[i] = region switch
            {
                0 => Rows.Gaussian(rng) * 1e-40f,
                1 => Rows.Gaussian(rng) * 1e-44f,
                2 => i % 97 == 0 ? float.PositiveInfinity : Rows.Gaussian(rng),
                3 => i % 89 == 0 ? float.NegativeInfinity : Rows.Gaussian(rng) * 1e-40f,
                4 => (i % 3 - 1) * float.Epsilon,
                _ => Rows.Gaussian(rng),
            };
        }
        var expected = Oracle.Quantize(type, x, 1, n);
        foreach (var level in Enum.GetValues<SimdLevel>().Where(Simd.IsSupported))
        {
            using var _ = Simd.Override(level);
            var actual = new byte[expected.Length];
            QuantKernels.Quantize(type, x, actual, 1, n);
            BlockAssert.Equal(type, expected, actual, $"subnormal and infinite blocks at {level}");
        }
    }
}
