using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Quants;

/// <summary>
/// A 256-weight block whose AVX2 vec_dot against Q8_K spends most of its work decoding the weights (grid lookups,
/// sign tables, bit planes) and then, per Q8_K block, forms eight int32 lanes from the decoded bytes and the
/// activation bytes, scaled into eight float lanes with one FMA by <c>d_x * d_y</c>. The tile decodes each weight
/// block once, to <see cref="Vectors"/> vectors, and reuses them for every activation row.
/// </summary>
internal interface IDecodedBlock
{
    /// <summary>Bytes per weight block.</summary>
    static abstract int BlockBytes { get; }

    /// <summary>How many 32-byte vectors <see cref="Decode"/> writes (at most <see cref="DecodedTiles.MaxVectors"/>).</summary>
    static abstract int Vectors { get; }

    /// <summary>The block's float scale <c>d_x</c>, the factor beside the activation's <c>d</c>.</summary>
    static abstract float Scale(ref byte xb);

    /// <summary>Decodes the weight block at <paramref name="xb"/> to <see cref="Vectors"/> vectors at <paramref name="w"/>.</summary>
    static abstract void Decode(ref byte xb, ref Vector256<byte> w);

    /// <summary>
    /// The int32 lanes of the decoded block against the 256 activation quants at <paramref name="q8"/>: the same
    /// lane totals the type's vec_dot forms (int32 sums are exact, so only the int16 steps must match it).
    /// </summary>
    static abstract Vector256<int> Dot(ref Vector256<byte> w, ref byte q8);

    /// <summary>
    /// <see cref="Dot"/> for four activation rows at once (quants at <paramref name="q8"/> and <paramref name="yStride"/>
    /// bytes apart), each decoded vector loaded once for the four.
    /// </summary>
    static abstract void Dot4(ref Vector256<byte> w, ref byte q8, int yStride,
        out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3);

    /// <summary>Whether the vec_dot adds a term into the main accumulator before the block's lanes (Q2_K's mins).</summary>
    static virtual bool HasPrologue => false;

    /// <summary>That term's FMA, given the decoded block, the activation block and its <c>d_y</c>.</summary>
    static virtual Vector256<float> Prologue(ref Vector256<byte> w, ref byte yb, float yd, Vector256<float> acc) => acc;

    /// <summary>Whether the vec_dot keeps a second float accumulator (mins, delta terms), stepped by <see cref="Extra"/>.</summary>
    static abstract bool HasExtra { get; }

    /// <summary>
    /// One block's step of the second accumulator, exactly as the type's vec_dot takes it, given the decoded block,
    /// the activation block <paramref name="yb"/>, <c>d = d_x * d_y</c> and the activation's <c>d_y</c>.
    /// </summary>
    static abstract Vector256<float> Extra(ref Vector256<byte> w, ref byte yb, float d, float yd, Vector256<float> extra);

    /// <summary>The final reduction of the accumulators, as the type's vec_dot ends.</summary>
    static abstract float Finish(Vector256<float> acc, Vector256<float> extra);
}

/// <summary>Sizes shared by <see cref="DecodedTiles{TBlock}"/>.</summary>
internal static class DecodedTiles
{
    /// <summary>The most vectors one decoded block may take.</summary>
    public const int MaxVectors = 32;

    /// <summary>Weight blocks decoded at a time: at most 16 x 32 x 32 bytes = 16 KiB, inside L1.</summary>
    public const int GroupBlocks = 16;

    /// <summary>Activation rows whose accumulators are kept at a time.</summary>
    public const int ColumnChunk = 64;

    /// <summary>Room for <see cref="GroupBlocks"/> decoded blocks.</summary>
    [InlineArray(GroupBlocks * MaxVectors)]
    public struct Buffer
    {
        private Vector256<byte> _element;
    }

    /// <summary>
    /// One block's int32 lanes in the common IQ form: for each of eight 32-weight sub-blocks, unsigned weight bytes
    /// <c>u</c>, a sign vector <c>s</c> (the activation byte is negated where <c>s</c> &lt; 0, as <c>vpsignb</c> does)
    /// and int16 multipliers <c>m</c>, stored as <c>u, s, m</c>: <c>sum_k madd(maddubs(u_k, sign(q8_k, s_k)), m_k)</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> SignedDot(ref Vector256<byte> w, ref byte q8)
    {
        Vector256<int> sum = Vector256<int>.Zero;
        for (int k = 0; k < 8; k++)
        {
            ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * k);
            Vector256<sbyte> y = Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32 * k)).AsSByte();
            Vector256<short> dot = Avx2.MultiplyAddAdjacent(v, Avx2.Sign(y, Unsafe.Add(ref v, 1).AsSByte()));
            sum = Avx2.Add(sum, Avx2.MultiplyAddAdjacent(dot, Unsafe.Add(ref v, 2).AsInt16()));
        }
        return sum;
    }

    /// <summary><see cref="SignedDot"/> for four activation rows <paramref name="yStride"/> bytes apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SignedDot4(ref Vector256<byte> w, ref byte q8, int yStride,
        out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3)
    {
        s0 = s1 = s2 = s3 = Vector256<int>.Zero;
        ref byte q8b = ref Unsafe.Add(ref q8, yStride), q8c = ref Unsafe.Add(ref q8, 2 * yStride), q8d = ref Unsafe.Add(ref q8, 3 * yStride);
        for (int k = 0; k < 8; k++)
        {
            ref Vector256<byte> v = ref Unsafe.Add(ref w, 3 * k);
            Vector256<byte> u = v;
            Vector256<sbyte> sg = Unsafe.Add(ref v, 1).AsSByte();
            Vector256<short> m = Unsafe.Add(ref v, 2).AsInt16();
            s0 = Avx2.Add(s0, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, Avx2.Sign(Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32 * k)).AsSByte(), sg)), m));
            s1 = Avx2.Add(s1, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, Avx2.Sign(Vector256.LoadUnsafe(ref Unsafe.Add(ref q8b, 32 * k)).AsSByte(), sg)), m));
            s2 = Avx2.Add(s2, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, Avx2.Sign(Vector256.LoadUnsafe(ref Unsafe.Add(ref q8c, 32 * k)).AsSByte(), sg)), m));
            s3 = Avx2.Add(s3, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, Avx2.Sign(Vector256.LoadUnsafe(ref Unsafe.Add(ref q8d, 32 * k)).AsSByte(), sg)), m));
        }
    }

    /// <summary>
    /// Eight chunks of (unsigned bytes, int16 scales) for four activation rows: <c>madd(scale, maddubs(q, q8))</c>
    /// summed, the lane totals of the Q4_K/Q5_K/Q6_K AVX2 loops.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScaledDot4(ref Vector256<byte> w, ref byte q8, int yStride,
        out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3)
    {
        s0 = s1 = s2 = s3 = Vector256<int>.Zero;
        ref byte q8b = ref Unsafe.Add(ref q8, yStride), q8c = ref Unsafe.Add(ref q8, 2 * yStride), q8d = ref Unsafe.Add(ref q8, 3 * yStride);
        for (int c = 0; c < 8; c++)
        {
            ref Vector256<byte> v = ref Unsafe.Add(ref w, 2 * c);
            Vector256<byte> q = v;
            Vector256<short> m = Unsafe.Add(ref v, 1).AsInt16();
            s0 = Avx2.Add(s0, Avx2.MultiplyAddAdjacent(m, Avx2.MultiplyAddAdjacent(q, Vector256.LoadUnsafe(ref Unsafe.Add(ref q8, 32 * c)).AsSByte())));
            s1 = Avx2.Add(s1, Avx2.MultiplyAddAdjacent(m, Avx2.MultiplyAddAdjacent(q, Vector256.LoadUnsafe(ref Unsafe.Add(ref q8b, 32 * c)).AsSByte())));
            s2 = Avx2.Add(s2, Avx2.MultiplyAddAdjacent(m, Avx2.MultiplyAddAdjacent(q, Vector256.LoadUnsafe(ref Unsafe.Add(ref q8c, 32 * c)).AsSByte())));
            s3 = Avx2.Add(s3, Avx2.MultiplyAddAdjacent(m, Avx2.MultiplyAddAdjacent(q, Vector256.LoadUnsafe(ref Unsafe.Add(ref q8d, 32 * c)).AsSByte())));
        }
    }

    /// <summary>
    /// A 0/0xFF sign mask (<c>(q ^ m) - m</c> negates where m is set) as a +1/-1 vector for <c>vpsignb</c>, which
    /// negates the same bytes the same way (-128 stays -128 in both).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> MaskToSign(Vector256<sbyte> mask) => (mask | Vector256<sbyte>.One).AsByte();
}

/// <summary>
/// Tiles for <see cref="IDecodedBlock"/> types on the AVX2 path (also the AVX-512 level, where these types' vec_dots
/// run the same AVX2 code): for each weight row, blocks are decoded a group at a time and multiplied with every
/// activation row of the tile. Each product keeps the vec_dot's float steps (one FMA per block into eight lanes, in
/// block order, and the same final reduction), so results are bit-identical to <see cref="IQuantKernel.VecDot"/>.
/// </summary>
internal static class DecodedTiles<TBlock> where TBlock : struct, IDecodedBlock
{
    private const int QK_K = 256, Q8KBytes = 292;

    // The decode buffer (16 KiB) is written before it is read; zeroing it would cost a pass over it per call.
    [SkipLocalsInit]
    public static void Run(IQuantKernel kernel, ReadOnlySpan<byte> x, int xStride, int rows, ReadOnlySpan<byte> y, int yStride, int cols, int n, Span<float> s, int sStride)
    {
        GemmTiles.Check(kernel, x, xStride, rows, y, yStride, cols, n, s, sStride);
        // One activation row gains nothing from decoding once; it keeps the vec_dot (generation).
        if (!QuantSimd.UseAvx2 || n % QK_K != 0 || cols < 2)
        {
            GemmTiles.VecDotEach(kernel, x, xStride, 0, rows, y, yStride, 0, cols, n, s, sStride);
            return;
        }
        int nb = n / QK_K;
        ref byte px = ref MemoryMarshal.GetReference(x);
        ref byte py = ref MemoryMarshal.GetReference(y);
        ref float ps = ref MemoryMarshal.GetReference(s);
        Unsafe.SkipInit(out DecodedTiles.Buffer buffer);
        ref Vector256<byte> w = ref Unsafe.As<DecodedTiles.Buffer, Vector256<byte>>(ref buffer);
        Span<float> dx = stackalloc float[DecodedTiles.GroupBlocks];
        Span<Vector256<float>> acc = stackalloc Vector256<float>[Math.Min(cols, DecodedTiles.ColumnChunk)];
        Span<Vector256<float>> extra = TBlock.HasExtra ? stackalloc Vector256<float>[acc.Length] : default;
        for (int t0 = 0; t0 < cols; t0 += DecodedTiles.ColumnChunk)
        {
            int tc = Math.Min(DecodedTiles.ColumnChunk, cols - t0);
            for (int r = 0; r < rows; r++)
            {
                ref byte xr = ref Unsafe.Add(ref px, r * xStride);
                acc.Slice(0, tc).Clear();
                if (TBlock.HasExtra) extra.Slice(0, tc).Clear();
                for (int g0 = 0; g0 < nb; g0 += DecodedTiles.GroupBlocks)
                {
                    int gb = Math.Min(DecodedTiles.GroupBlocks, nb - g0);
                    for (int i = 0; i < gb; i++)
                    {
                        ref byte xb = ref Unsafe.Add(ref xr, (g0 + i) * TBlock.BlockBytes);
                        dx[i] = TBlock.Scale(ref xb);
                        TBlock.Decode(ref xb, ref Unsafe.Add(ref w, i * TBlock.Vectors));
                    }
                    int t = 0;
                    for (; t + 4 <= tc; t += 4)
                    {
                        ref byte yb = ref Unsafe.Add(ref py, (t0 + t) * yStride + g0 * Q8KBytes);
                        Vector256<float> a0 = acc[t], a1 = acc[t + 1], a2 = acc[t + 2], a3 = acc[t + 3];
                        for (int i = 0; i < gb; i++, yb = ref Unsafe.Add(ref yb, Q8KBytes))
                        {
                            ref Vector256<byte> wb = ref Unsafe.Add(ref w, i * TBlock.Vectors);
                            TBlock.Dot4(ref wb, ref Unsafe.Add(ref yb, 4), yStride, out var s0, out var s1, out var s2, out var s3);
                            float xd = dx[i];
                            float yd0 = Unsafe.ReadUnaligned<float>(ref yb), yd1 = Unsafe.ReadUnaligned<float>(ref Unsafe.Add(ref yb, yStride));
                            float yd2 = Unsafe.ReadUnaligned<float>(ref Unsafe.Add(ref yb, 2 * yStride)), yd3 = Unsafe.ReadUnaligned<float>(ref Unsafe.Add(ref yb, 3 * yStride));
                            if (TBlock.HasPrologue)
                            {
                                a0 = TBlock.Prologue(ref wb, ref yb, yd0, a0);
                                a1 = TBlock.Prologue(ref wb, ref Unsafe.Add(ref yb, yStride), yd1, a1);
                                a2 = TBlock.Prologue(ref wb, ref Unsafe.Add(ref yb, 2 * yStride), yd2, a2);
                                a3 = TBlock.Prologue(ref wb, ref Unsafe.Add(ref yb, 3 * yStride), yd3, a3);
                            }
                            a0 = Fma.MultiplyAdd(Vector256.Create(xd * yd0), Avx.ConvertToVector256Single(s0), a0);
                            a1 = Fma.MultiplyAdd(Vector256.Create(xd * yd1), Avx.ConvertToVector256Single(s1), a1);
                            a2 = Fma.MultiplyAdd(Vector256.Create(xd * yd2), Avx.ConvertToVector256Single(s2), a2);
                            a3 = Fma.MultiplyAdd(Vector256.Create(xd * yd3), Avx.ConvertToVector256Single(s3), a3);
                            if (TBlock.HasExtra)
                            {
                                extra[t] = TBlock.Extra(ref wb, ref yb, xd * yd0, yd0, extra[t]);
                                extra[t + 1] = TBlock.Extra(ref wb, ref Unsafe.Add(ref yb, yStride), xd * yd1, yd1, extra[t + 1]);
                                extra[t + 2] = TBlock.Extra(ref wb, ref Unsafe.Add(ref yb, 2 * yStride), xd * yd2, yd2, extra[t + 2]);
                                extra[t + 3] = TBlock.Extra(ref wb, ref Unsafe.Add(ref yb, 3 * yStride), xd * yd3, yd3, extra[t + 3]);
                            }
                        }
                        acc[t] = a0; acc[t + 1] = a1; acc[t + 2] = a2; acc[t + 3] = a3;
                    }
                    for (; t < tc; t++)
                    {
                        ref byte yb = ref Unsafe.Add(ref py, (t0 + t) * yStride + g0 * Q8KBytes);
                        Vector256<float> a = acc[t], e = TBlock.HasExtra ? extra[t] : default;
                        for (int i = 0; i < gb; i++, yb = ref Unsafe.Add(ref yb, Q8KBytes))
                        {
                            float yd = Unsafe.ReadUnaligned<float>(ref yb), d = dx[i] * yd;
                            ref Vector256<byte> wb = ref Unsafe.Add(ref w, i * TBlock.Vectors);
                            if (TBlock.HasPrologue) a = TBlock.Prologue(ref wb, ref yb, yd, a);
                            Vector256<int> sumi = TBlock.Dot(ref wb, ref Unsafe.Add(ref yb, 4));
                            a = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), a);
                            if (TBlock.HasExtra) e = TBlock.Extra(ref wb, ref yb, d, yd, e);
                        }
                        acc[t] = a;
                        if (TBlock.HasExtra) extra[t] = e;
                    }
                }
                for (int t = 0; t < tc; t++)
                    Unsafe.Add(ref ps, (t0 + t) * sStride + r) = TBlock.Finish(acc[t], TBlock.HasExtra ? extra[t] : default);
            }
        }
    }
}
