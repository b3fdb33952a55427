using System.Runtime.Intrinsics;
using Squeeze.Models;
using Squeeze.Numerics;
using Xunit;

namespace Squeeze.Tests.Models;

/// <summary>The vector primitives of <see cref="Attention"/> against their one-lane references, bit for bit.</summary>
public sealed class AttentionPrimitivesTests
{
    [Fact]
    public void Widening_a_run_equals_Fp16_ToFloat_for_every_half()
    {
        var h = new ushort[65536 + 7];
        for (int i = 0; i < h.Length; i++) h[i] = (ushort)i;
        var f = new float[h.Length];
        Attention.ToFloat(h, f);
        for (int i = 0; i < h.Length; i++)
            Assert.Equal(BitConverter.SingleToUInt32Bits(Fp16.ToFloat(h[i])), BitConverter.SingleToUInt32Bits(f[i]));
    }

    [Fact]
    public void RoundHalf_equals_rounding_through_fp16()
    {
        var rng = new Random(3);
        var x = new List<float> { 0f, -0f, 65504f, 65519.99f, 65520f, -65520f, 1e9f, float.PositiveInfinity, float.NegativeInfinity,
            6.1035156e-5f, 6.1e-5f, 5.96e-8f, 2.98e-8f, 2.9802322e-8f, 1e-10f, -3e-6f, 1f + 1f / 2048, 1f + 3f / 2048 };
        for (int i = 0; i < 20000; i++)
        {
            // Random bit patterns across the fp16 range and beyond.
            uint bits = (uint)rng.Next(0x2E00_0000, 0x4800_0000) | (rng.Next(2) == 0 ? 0 : 0x8000_0000u);
            x.Add(BitConverter.UInt32BitsToSingle(bits));
        }
        while (x.Count % 16 != 0) x.Add(1f);
        for (int i = 0; i < x.Count; i += 16)
        {
            var r = Attention.RoundHalf(Vector512.Create(x.GetRange(i, 16).ToArray()));
            for (int l = 0; l < 16; l++)
                Assert.True(BitConverter.SingleToUInt32Bits(Fp16.Round(x[i + l])) == BitConverter.SingleToUInt32Bits(r.GetElement(l)),
                    $"{x[i + l]:R}: {Fp16.Round(x[i + l]):R} != {r.GetElement(l):R}");
        }
    }

    [Fact]
    public void Vector_exp_equals_its_scalar_form_and_is_close_to_exp()
    {
        var rng = new Random(5);
        var x = new List<float> { 0f, -0f, float.NegativeInfinity, -87.3f, -88.7f, -100f, -103.9f, -104f, -133f, -140f, -200f, 88f, 89f, 1f, -1e-8f };
        for (int i = 0; i < 40000; i++) x.Add((float)(-rng.NextDouble() * 120));
        while (x.Count % 16 != 0) x.Add(0f);
        for (int i = 0; i < x.Count; i += 16)
        {
            var e = Attention.Exp(Vector512.Create(x.GetRange(i, 16).ToArray()));
            for (int l = 0; l < 16; l++)
            {
                float scalar = Attention.Exp(x[i + l]);
                Assert.Equal(BitConverter.SingleToUInt32Bits(scalar), BitConverter.SingleToUInt32Bits(e.GetElement(l)));
                double exact = Math.Exp(x[i + l]);
                if (exact > 1e-37 && exact < float.MaxValue) Assert.True(Math.Abs(scalar - exact) <= 4e-7 * exact, $"exp({x[i + l]:R}) = {scalar:R}, expected {exact:R}");
            }
        }
    }

    [Theory]
    [InlineData(64)]
    [InlineData(128)]
    [InlineData(80)]
    [InlineData(40)]
    public void Dot_f16_equals_its_lane_by_lane_form(int n)
    {
        var rng = new Random(n);
        for (int trial = 0; trial < 200; trial++)
        {
            var x = new float[n];
            var y = new float[n];
            for (int i = 0; i < n; i++)
            {
                x[i] = Fp16.Round((float)(rng.NextDouble() * 4 - 2));
                y[i] = Fp16.Round((float)(rng.NextDouble() * 4 - 2));
            }
            Assert.Equal(BitConverter.SingleToUInt32Bits(Attention.DotF16Reference(x, y)), BitConverter.SingleToUInt32Bits(Attention.DotF16(x, y)));
        }
    }
}
