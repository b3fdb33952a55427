using Squeeze.Numerics;
using Xunit;

namespace Squeeze.Tests.Numerics;

public class Fp16Tests
{
    [Fact]
    public void ToFloat_equals_the_Half_cast_for_every_half()
    {
        for (int h = 0; h < 65536; h++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)h), actual = Fp16.ToFloat((ushort)h);
            if (float.IsNaN(expected)) Assert.True(float.IsNaN(actual), $"0x{h:X4} is a NaN");
            else Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual), $"0x{h:X4}: {expected:R} vs {actual:R}");
        }
    }

    [Fact]
    public void FromFloat_round_trips_every_finite_half()
    {
        for (int h = 0; h < 65536; h++)
        {
            if ((h & 0x7C00) == 0x7C00) continue;
            Assert.Equal((ushort)h, Fp16.FromFloat(Fp16.ToFloat((ushort)h)));
        }
    }
}
