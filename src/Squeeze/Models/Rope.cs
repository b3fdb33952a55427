namespace Squeeze.Models;

/// <summary>
/// Rotary position embeddings as ggml computes them: per position a table of (cos, sin) built with
/// theta_i = p * base^(-2i/n_rot) by repeated multiplication in float (ggml's rope cache), then pairs rotated.
/// </summary>
public sealed class Rope
{
    private readonly RopeStyle _style;
    private readonly int _dims;
    private readonly float _thetaScale, _freqScale;

    public Rope(RopeStyle style, int dims, float freqBase, float freqScale)
    {
        _style = style;
        _dims = dims;
        _thetaScale = MathF.Pow(freqBase, -2.0f / dims);
        _freqScale = freqScale;
    }

    /// <summary>Fills <paramref name="cache"/> (length n_rot: cos, sin interleaved) for position <paramref name="position"/>.</summary>
    public void Cache(int position, Span<float> cache)
    {
        float theta = position;
        for (int i = 0; i < _dims; i += 2)
        {
            float t = _freqScale * theta;
            cache[i] = MathF.Cos(t);
            cache[i + 1] = MathF.Sin(t);
            theta *= _thetaScale;
        }
    }

    /// <summary>Rotates one head in place using a cache from <see cref="Cache"/>.</summary>
    public void Apply(Span<float> head, ReadOnlySpan<float> cache)
    {
        int half = _dims / 2;
        for (int i = 0; i < _dims; i += 2)
        {
            float cos = cache[i], sin = cache[i + 1];
            int a, b;
            if (_style == RopeStyle.Normal) { a = i; b = i + 1; }
            else { a = i / 2; b = i / 2 + half; }
            float x0 = head[a], x1 = head[b];
            // ggml-cpu's compiled rotate_pairs (GCC contracts it, in its scalar and vectorized loops alike, for both
            // layouts): x0*cos and x0*sin fused, the other product rounded first.
            head[a] = MathF.FusedMultiplyAdd(x0, cos, -(x1 * sin));
            head[b] = MathF.FusedMultiplyAdd(x0, sin, x1 * cos);
        }
    }
}
