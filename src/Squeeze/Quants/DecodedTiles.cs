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

    /// <summary>The final reduction of the eight float lanes, as the type's vec_dot ends.</summary>
    static abstract float Finish(Vector256<float> acc);
}

/// <summary>Sizes shared by <see cref="DecodedTiles{TBlock}"/>.</summary>
internal static class DecodedTiles
{
    /// <summary>The most vectors one decoded block may take.</summary>
    public const int MaxVectors = 24;

    /// <summary>Weight blocks decoded at a time: 16 x 24 x 32 bytes = 12 KiB, well inside L1.</summary>
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
        DecodedTiles.Buffer buffer = default;
        ref Vector256<byte> w = ref Unsafe.As<DecodedTiles.Buffer, Vector256<byte>>(ref buffer);
        Span<float> dx = stackalloc float[DecodedTiles.GroupBlocks];
        Span<Vector256<float>> acc = stackalloc Vector256<float>[Math.Min(cols, DecodedTiles.ColumnChunk)];
        for (int t0 = 0; t0 < cols; t0 += DecodedTiles.ColumnChunk)
        {
            int tc = Math.Min(DecodedTiles.ColumnChunk, cols - t0);
            for (int r = 0; r < rows; r++)
            {
                ref byte xr = ref Unsafe.Add(ref px, r * xStride);
                acc.Slice(0, tc).Clear();
                for (int g0 = 0; g0 < nb; g0 += DecodedTiles.GroupBlocks)
                {
                    int gb = Math.Min(DecodedTiles.GroupBlocks, nb - g0);
                    for (int i = 0; i < gb; i++)
                    {
                        ref byte xb = ref Unsafe.Add(ref xr, (g0 + i) * TBlock.BlockBytes);
                        dx[i] = TBlock.Scale(ref xb);
                        TBlock.Decode(ref xb, ref Unsafe.Add(ref w, i * TBlock.Vectors));
                    }
                    for (int t = 0; t < tc; t++)
                    {
                        ref byte yb = ref Unsafe.Add(ref py, (t0 + t) * yStride + g0 * Q8KBytes);
                        Vector256<float> a = acc[t];
                        for (int i = 0; i < gb; i++, yb = ref Unsafe.Add(ref yb, Q8KBytes))
                        {
                            float d = dx[i] * Unsafe.ReadUnaligned<float>(ref yb);
                            Vector256<int> sumi = TBlock.Dot(ref Unsafe.Add(ref w, i * TBlock.Vectors), ref Unsafe.Add(ref yb, 4));
                            a = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), a);
                        }
                        acc[t] = a;
                    }
                }
                for (int t = 0; t < tc; t++)
                    Unsafe.Add(ref ps, (t0 + t) * sStride + r) = TBlock.Finish(acc[t]);
            }
        }
    }
}
