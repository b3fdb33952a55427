using System.Runtime.Intrinsics;
using Squeeze.Numerics;
using Squeeze.Quants;
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

    [Fact]
    public void Vector_widening_gives_ggml_bits_for_every_half_and_flags_exactly_inf_and_nan()
    {
        // The reference: ggml_compute_fp16_to_fp32's bits (F16Kernel's table), Inf as Inf, NaN made quiet.
        var halves = new ushort[65536];
        for (int h = 0; h < halves.Length; h++) halves[h] = (ushort)h;
        var expected = new float[65536];
        for (int h = 0; h < expected.Length; h++) expected[h] = F16Kernel.ToFloat((ushort)h);

        for (int i = 0; i < 65536; i += 16)
        {
            bool special = false;
            for (int k = 0; k < 16; k++) special |= (halves[i + k] & 0x7C00) == 0x7C00;
            var signExtended = Vector512.Create(Enumerable.Range(0, 16).Select(k => (int)(short)halves[i + k]).ToArray());
            var zeroExtended = Vector512.Create(Enumerable.Range(0, 16).Select(k => (int)halves[i + k]).ToArray());

            // Exact widening, from sign- or zero-extended lanes, at each width.
            AssertBits(expected, i, Fp16.Widen(signExtended), "Widen 512 (sign-extended)");
            AssertBits(expected, i, Fp16.Widen(zeroExtended), "Widen 512 (zero-extended)");
            AssertBits(expected, i, Vector512.Create(Fp16.Widen(signExtended.GetLower()), Fp16.Widen(signExtended.GetUpper())), "Widen 256");
            AssertBits(expected, i, Vector512.Create(
                Vector256.Create(Fp16.Widen(signExtended.GetLower().GetLower()), Fp16.Widen(signExtended.GetLower().GetUpper())),
                Vector256.Create(Fp16.Widen(signExtended.GetUpper().GetLower()), Fp16.Widen(signExtended.GetUpper().GetUpper()))), "Widen 128");

            // Fast widening: exact for finite halves, and the guard says whether any lane was Inf or NaN.
            Vector256<int> g256 = default;
            Vector128<int> g128 = default;
            var fast256 = Vector512.Create(Fp16.WidenFinite(signExtended.GetLower(), ref g256), Fp16.WidenFinite(signExtended.GetUpper(), ref g256));
            var fast128 = Vector512.Create(
                Vector256.Create(Fp16.WidenFinite(signExtended.GetLower().GetLower(), ref g128), Fp16.WidenFinite(signExtended.GetLower().GetUpper(), ref g128)),
                Vector256.Create(Fp16.WidenFinite(signExtended.GetUpper().GetLower(), ref g128), Fp16.WidenFinite(signExtended.GetUpper().GetUpper(), ref g128)));
            Assert.Equal(special, Fp16.HasSpecial(g256));
            Assert.Equal(special, Fp16.HasSpecial(g128));
            if (!special)
            {
                AssertBits(expected, i, fast256, "WidenFinite 256");
                AssertBits(expected, i, fast128, "WidenFinite 128");
            }
            if (Simd.IsSupported(SimdLevel.Avx512))
            {
                Vector512<int> g512 = default;
                var fast512 = Fp16.WidenFinite(signExtended, ref g512);
                Assert.Equal(special, Fp16.HasSpecial(g512));
                if (!special) AssertBits(expected, i, fast512, "WidenFinite 512");
                Vector512<int> gLoad = default;
                var loaded = Fp16.Load16(ref halves[0], (nuint)i, ref gLoad);
                Assert.Equal(special, Fp16.HasSpecial(gLoad));
                if (!special) AssertBits(expected, i, loaded, "Load16");
                AssertBits(expected, i, Fp16.Load16Exact(ref halves[0], (nuint)i), "Load16Exact");
            }
            if (Simd.IsSupported(SimdLevel.Avx2))
            {
                Vector256<int> gLoad = default;
                var loaded = Vector512.Create(Fp16.Load8(ref halves[0], (nuint)i, ref gLoad), Fp16.Load8(ref halves[0], (nuint)i + 8, ref gLoad));
                Assert.Equal(special, Fp16.HasSpecial(gLoad));
                if (!special) AssertBits(expected, i, loaded, "Load8");
                AssertBits(expected, i, Vector512.Create(Fp16.Load8Exact(ref halves[0], (nuint)i), Fp16.Load8Exact(ref halves[0], (nuint)i + 8)), "Load8Exact");
            }
        }
    }

    private static void AssertBits(float[] expected, int start, Vector512<float> actual, string what)
    {
        for (int k = 0; k < 16; k++)
        {
            uint e = BitConverter.SingleToUInt32Bits(expected[start + k]), a = BitConverter.SingleToUInt32Bits(actual[k]);
            if (e != a) Assert.Fail($"{what}: half 0x{start + k:X4} gives 0x{a:X8}, ggml 0x{e:X8}");
        }
    }
}
