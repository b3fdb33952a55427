namespace Squeeze.Evaluation.Tasks;

/// <summary>
/// The 32-bit Mersenne Twister of C++'s <c>std::mt19937</c>, bit-exact, plus the two ways llama-perplexity turns its
/// output into an index: libstdc++'s <c>uniform_int_distribution</c> (HellaSwag) and a float scaling (WinoGrande and
/// multiple choice). llama.cpp seeds it with 1 for every task sampling, so the same file gives the same tasks.
/// </summary>
public sealed class Mt19937
{
    private const int N = 624, M = 397;
    private const uint MatrixA = 0x9908b0df, UpperMask = 0x80000000, LowerMask = 0x7fffffff;
    private readonly uint[] _state = new uint[N];
    private int _index;

    /// <summary>The generator after <c>std::mt19937 rng(seed)</c>.</summary>
    public Mt19937(uint seed)
    {
        _state[0] = seed;
        for (int i = 1; i < N; i++) _state[i] = 1812433253u * (_state[i - 1] ^ (_state[i - 1] >> 30)) + (uint)i;
        _index = N;
    }

    /// <summary><c>std::mt19937::max()</c>.</summary>
    public const uint Max = uint.MaxValue;

    /// <summary>The next output, as <c>rng()</c>.</summary>
    public uint Next()
    {
        if (_index >= N) Twist();
        uint y = _state[_index++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >> 18;
        return y;
    }

    private void Twist()
    {
        for (int i = 0; i < N; i++)
        {
            uint y = (_state[i] & UpperMask) | (_state[(i + 1) % N] & LowerMask);
            _state[i] = _state[(i + M) % N] ^ (y >> 1) ^ ((y & 1) != 0 ? MatrixA : 0);
        }
        _index = 0;
    }

    /// <summary>
    /// <c>std::uniform_int_distribution&lt;size_t&gt;(0, count - 1)(rng)</c> as libstdc++ (GCC 11 and later) computes it for a
    /// 32-bit engine: Lemire's multiply-and-reject, drawing again while the low half of the product falls below
    /// 2^32 mod count. (MSVC's and libc++'s distributions draw differently; llama.cpp's Linux builds use libstdc++.)
    /// </summary>
    public ulong UniformIndex(ulong count)
    {
        ArgumentOutOfRangeException.ThrowIfZero(count);
        if (count > 1UL << 32) throw new ArgumentOutOfRangeException(nameof(count), count, "ranges above 2^32 take libstdc++'s upscaling path, which is not implemented");
        if (count == 1UL << 32) return Next(); // the engine's range equals the requested one: used as drawn
        uint range = (uint)count;
        ulong product = (ulong)Next() * range;
        uint low = (uint)product;
        if (low < range)
        {
            uint threshold = (0u - range) % range;
            while (low < threshold)
            {
                product = (ulong)Next() * range;
                low = (uint)product;
            }
        }
        return product >> 32;
    }

    /// <summary>
    /// llama-perplexity's <c>int(scale * rng() * count)</c> with <c>scale = 1 / (1 + (float)max())</c>, all in float as it
    /// computes it (the draw is rounded to float first). A draw within 128 of 2^32 rounds up to an index of
    /// <paramref name="count"/>, out of bounds in llama.cpp; it is clamped to the last index here.
    /// </summary>
    public int ScaledIndex(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        float scale = 1f / (1f + (float)Max);
        float x = scale * (float)Next();
        x *= (float)count;
        int j = (int)x;
        return Math.Min(j, count - 1);
    }
}
