using Squeeze.Numerics;

namespace Squeeze.Quants;

// ggml-cpu quantizes activations to Q8_0 and Q8_1 with its own x86 routine, not the reference one: the multiplier is
// 127/amax (not 1/(amax/127)) and values round half to even (_mm256_round_ps), then saturate to int8.

public sealed partial class Q8_0
{
    /// <summary>ggml-cpu's <c>quantize_row_q8_0</c> (x86): the activation side of Q4_0/Q5_0/Q8_0/IQ4_NL dot products.</summary>
    public void QuantizeActivationRow(ReadOnlySpan<float> src, Span<byte> dst) => Q8Activations.Quantize(src, dst, BlockBytes, withSum: false);
}

public sealed partial class Q8_1
{
    /// <summary>ggml-cpu's <c>quantize_row_q8_1</c> (x86): as Q8_0's, plus <c>s = d * sum(q)</c>.</summary>
    public void QuantizeActivationRow(ReadOnlySpan<float> src, Span<byte> dst) => Q8Activations.Quantize(src, dst, BlockBytes, withSum: true);
}

internal static class Q8Activations
{
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> y, int blockBytes, bool withSum)
    {
        const int qk = 32;
        if (x.Length % qk != 0 || y.Length < x.Length / qk * blockBytes) throw new ArgumentException("activation row does not fit whole Q8 blocks");
        int header = withSum ? 4 : 2;
        for (int i = 0; i < x.Length / qk; i++)
        {
            var xb = x.Slice(i * qk, qk);
            var yb = y.Slice(i * blockBytes, blockBytes);
            float max = 0f;
            foreach (float v in xb) max = Math.Max(max, MathF.Abs(v));
            float d = max / 127f;
            float id = max != 0f ? 127f / max : 0f;
            Fp16Field(yb, 0, d);
            int sum = 0;
            for (int j = 0; j < qk; j++)
            {
                int q = Saturate(MathF.Round(xb[j] * id, MidpointRounding.ToEven));
                sum += q;
                yb[header + j] = (byte)(sbyte)q;
            }
            if (withSum) Fp16Field(yb, 2, d * sum);
        }
    }

    // _mm256_cvtps_epi32 then the saturating packs: out-of-range and NaN become the int8 limits as the packs make them.
    private static int Saturate(float r) => float.IsNaN(r) ? -128 : r >= 127f ? 127 : r <= -128f ? -128 : (int)r;

    private static void Fp16Field(Span<byte> b, int offset, float v)
    {
        ushort h = Fp16.FromFloat(v);
        b[offset] = (byte)h;
        b[offset + 1] = (byte)(h >> 8);
    }
}
