using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Numerics;

/// <summary>The instruction-set levels kernels choose between, lowest first.</summary>
public enum SimdLevel
{
    /// <summary>The scalar reference code every kernel keeps.</summary>
    Scalar = 0,
    /// <summary>128-bit vectors (SSE4.1/SSSE3 or AdvSimd).</summary>
    Vector128 = 1,
    /// <summary>256-bit vectors with AVX2 and FMA.</summary>
    Avx2 = 2,
    /// <summary>512-bit vectors with AVX-512 F/BW/VL (and VNNI where present).</summary>
    Avx512 = 3,
}

/// <summary>
/// The SIMD level kernels use: the best the CPU supports, unless lowered with <see cref="Override"/>
/// (tests run every level by name; <c>SQUEEZE_SIMD=scalar|vector128|avx2|avx512</c> does the same from outside).
/// </summary>
public static class Simd
{
    /// <summary>The best level this CPU supports.</summary>
    public static SimdLevel Supported { get; } = Detect();

    private static SimdLevel _level = FromEnvironment() ?? Supported;

    /// <summary>The level kernels use now.</summary>
    public static SimdLevel Level => _level;

    /// <summary>Whether <paramref name="level"/> can run on this CPU.</summary>
    public static bool IsSupported(SimdLevel level) => level <= Supported;

    /// <summary>Forces <paramref name="level"/> until the returned scope is disposed (for tests and benchmarks).</summary>
    public static IDisposable Override(SimdLevel level)
    {
        if (!IsSupported(level)) throw new PlatformNotSupportedException($"this CPU does not support {level}");
        var previous = _level;
        _level = level;
        return new Scope(() => _level = previous);
    }

    private static SimdLevel Detect()
    {
        if (Avx512F.IsSupported && Avx512BW.IsSupported && Avx512F.VL.IsSupported && Vector512.IsHardwareAccelerated) return SimdLevel.Avx512;
        if (Avx2.IsSupported && Fma.IsSupported) return SimdLevel.Avx2;
        if (Vector128.IsHardwareAccelerated && (Sse41.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported)) return SimdLevel.Vector128;
        return SimdLevel.Scalar;
    }

    private static SimdLevel? FromEnvironment()
    {
        var s = Environment.GetEnvironmentVariable("SQUEEZE_SIMD");
        if (string.IsNullOrEmpty(s) || !Enum.TryParse<SimdLevel>(s, ignoreCase: true, out var level)) return null;
        return level <= Detect() ? level : null;
    }

    private sealed class Scope(Action restore) : IDisposable
    {
        private Action? _restore = restore;
        public void Dispose() => Interlocked.Exchange(ref _restore, null)?.Invoke();
    }
}
