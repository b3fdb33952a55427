using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Squeeze.Numerics;
using Squeeze.Quants;

namespace Squeeze.Models;

/// <summary>
/// Batched products in the summation order of llamafile's tinyBLAS (ggml-cpu's <c>llamafile/sgemm.cpp</c>), which
/// ggml-cpu's <c>mul_mat</c> tries first whenever a batch has two tokens or more. Its order differs from vec_dot's, so
/// prompt processing must follow it to give llama.cpp's activations bit for bit. Squeeze reproduces the AVX-512 build
/// (the oracle's): at every SIMD level, the scalar reference included, the results are that build's.
/// <list type="bullet">
/// <item>F32, F16 and BF16 weights (<c>tinyBLAS&lt;16, __m512&gt;</c>; the activations rounded to the weight's type first
/// for F16 and BF16): rows of a multiple of 16 and a multiple of 4 rows, else tinyBLAS declines and vec_dot runs. Each
/// output is one 16-lane accumulator, one fused multiply-add per 16 columns, reduced at the end as
/// <c>_mm512_reduce_add_ps</c> reduces (<see cref="Lanes.Reduce16(Vector512{float})"/>). vec_dot keeps four accumulators.</item>
/// <item>IQ4_NL against Q8_0 activations (<c>tinyBLAS_Q0_AVX</c>): one 8-lane accumulator, per block
/// <c>acc = fma(d_w * d_x, float(four-product sums), acc)</c>, then <c>hsum</c>. vec_dot keeps two accumulators.</item>
/// </list>
/// <c>tinyBLAS_Q0_AVX</c> also serves Q4_0, Q5_0 and Q8_0, but there it sums exactly as their AVX2 vec_dot does (the
/// same single accumulator and horizontal sum), so <see cref="MatMul"/> keeps their tiled vec_dot kernels. Tiling never
/// changes a result: every output has its own accumulator.
/// </summary>
internal sealed unsafe class TinyBlas
{
    /// <summary>Tokens per work item: their activation rows stay in cache while a few weight rows are used against them.</summary>
    private const int TokenChunk = 64;

    private float[] _b = [];

    [ThreadStatic] private static float[]? t_widened;

    /// <summary>Whether ggml-cpu's AVX-512 build would hand this product to tinyBLAS with an order that vec_dot does not
    /// already reproduce: <paramref name="rows"/> x <paramref name="cols"/> weight of <paramref name="type"/>, <paramref name="n"/> tokens.</summary>
    public static bool Serves(GgmlType type, int rows, int cols, int n) => n >= 2 && type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => cols % 16 == 0 && rows % 4 == 0,
        GgmlType.IQ4_NL => true,
        _ => false,
    };

    /// <summary>
    /// <c>y[t * w.Rows + r] = w row r · activation row t</c> for <paramref name="n"/> tokens, where <paramref name="act"/>
    /// holds the activation rows already converted to the weight's vec-dot type (rows of <paramref name="actRowSize"/> bytes).
    /// </summary>
    public void Run(Weight w, byte[] act, int actRowSize, int n, float[] y, int threads)
    {
        int rows = w.Rows, cols = w.Columns;
        if (!Serves(w.Type, rows, cols, n)) throw new ArgumentException($"tinyBLAS does not serve {w.Type.Name()} {rows}x{cols} for {n} tokens");
        if (y.Length < (long)n * rows) throw new ArgumentException("output too short", nameof(y));
        if (w.Type == GgmlType.IQ4_NL)
        {
            RunIq4Nl(w, act, actRowSize, n, y, threads);
            return;
        }

        // The activations as floats: F32 as they are; F16 and BF16 widened back exactly from the rounded rows ggml's
        // tinyBLAS loads (its load<__m512> widens each element the same way).
        if (_b.Length < (long)n * cols) _b = new float[(long)n * cols];
        var b = _b;
        var actKernel = QuantKernels.Get(w.Type);
        Workers.For(n, threads, (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
                actKernel.DequantizeRow(act.AsSpan(t * actRowSize, actRowSize), b.AsSpan(t * cols, cols));
        });

        var kernel = w.Kernel!;
        bool widen = w.Type != GgmlType.F32;
        int rowSize = w.RowSize;
        int rowChunk = Math.Clamp((rows / Math.Max(1, threads * 4) + 3) & ~3, 4, 64);
        int rowChunks = (rows + rowChunk - 1) / rowChunk, tokenChunks = (n + TokenChunk - 1) / TokenChunk;
        byte* data = w.Data;
        var level = Fma.IsSupported ? Simd.Level : SimdLevel.Scalar;
        Workers.Each(rowChunks * tokenChunks, threads, i =>
        {
            int r0 = i % rowChunks * rowChunk, t0 = i / rowChunks * TokenChunk;
            int rc = Math.Min(rowChunk, rows - r0), tc = Math.Min(TokenChunk, n - t0);
            fixed (float* pb = b)
            fixed (float* py = y)
            {
                float* a;
                long lda;
                float[]? scratch = null;
                if (widen)
                {
                    scratch = t_widened is { } s && s.Length >= rc * cols ? s : t_widened = new float[rowChunk * cols];
                    for (int r = 0; r < rc; r++)
                        kernel.DequantizeRow(new ReadOnlySpan<byte>(data + (long)(r0 + r) * rowSize, rowSize), scratch.AsSpan(r * cols, cols));
                    lda = cols;
                }
                else lda = rowSize / sizeof(float);
                fixed (float* ps = scratch)
                {
                    a = widen ? ps : (float*)(data + (long)r0 * rowSize);
                    float* bt = pb + (long)t0 * cols, c = py + (long)t0 * rows + r0;
                    if (level >= SimdLevel.Avx512) FloatTile(a, lda, rc, bt, cols, tc, cols, c, rows);
                    else if (level >= SimdLevel.Avx2) FloatTile256(a, lda, rc, bt, cols, tc, cols, c, rows);
                    else FloatTileScalar(a, lda, rc, bt, cols, tc, cols, c, rows);
                }
            }
        });
    }

    /// <summary><c>c[t * ldc + r] = a row r · b row t</c> for <paramref name="m"/> rows (a multiple of 4) and
    /// <paramref name="n"/> tokens over <paramref name="k"/> columns (a multiple of 16), four rows by four tokens at a time.</summary>
    internal static void FloatTile(float* a, long lda, int m, float* b, long ldb, int n, int k, float* c, long ldc)
    {
        for (int i = 0; i < m; i += 4)
        {
            float* a0 = a + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            int j = 0;
            for (; j + 4 <= n; j += 4)
            {
                float* b0 = b + j * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
                Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
                Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
                Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
                Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
                for (int l = 0; l < k; l += 16)
                {
                    var va0 = Vector512.Load(a0 + l);
                    var va1 = Vector512.Load(a1 + l);
                    var va2 = Vector512.Load(a2 + l);
                    var va3 = Vector512.Load(a3 + l);
                    var vb = Vector512.Load(b0 + l);
                    c00 = Avx512F.FusedMultiplyAdd(va0, vb, c00);
                    c01 = Avx512F.FusedMultiplyAdd(va1, vb, c01);
                    c02 = Avx512F.FusedMultiplyAdd(va2, vb, c02);
                    c03 = Avx512F.FusedMultiplyAdd(va3, vb, c03);
                    vb = Vector512.Load(b1 + l);
                    c10 = Avx512F.FusedMultiplyAdd(va0, vb, c10);
                    c11 = Avx512F.FusedMultiplyAdd(va1, vb, c11);
                    c12 = Avx512F.FusedMultiplyAdd(va2, vb, c12);
                    c13 = Avx512F.FusedMultiplyAdd(va3, vb, c13);
                    vb = Vector512.Load(b2 + l);
                    c20 = Avx512F.FusedMultiplyAdd(va0, vb, c20);
                    c21 = Avx512F.FusedMultiplyAdd(va1, vb, c21);
                    c22 = Avx512F.FusedMultiplyAdd(va2, vb, c22);
                    c23 = Avx512F.FusedMultiplyAdd(va3, vb, c23);
                    vb = Vector512.Load(b3 + l);
                    c30 = Avx512F.FusedMultiplyAdd(va0, vb, c30);
                    c31 = Avx512F.FusedMultiplyAdd(va1, vb, c31);
                    c32 = Avx512F.FusedMultiplyAdd(va2, vb, c32);
                    c33 = Avx512F.FusedMultiplyAdd(va3, vb, c33);
                }
                float* y0 = c + j * ldc + i;
                Store4(y0, c00, c01, c02, c03);
                Store4(y0 + ldc, c10, c11, c12, c13);
                Store4(y0 + 2 * ldc, c20, c21, c22, c23);
                Store4(y0 + 3 * ldc, c30, c31, c32, c33);
            }
            for (; j < n; j++)
            {
                float* b0 = b + j * ldb;
                Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
                for (int l = 0; l < k; l += 16)
                {
                    var vb = Vector512.Load(b0 + l);
                    c0 = Avx512F.FusedMultiplyAdd(Vector512.Load(a0 + l), vb, c0);
                    c1 = Avx512F.FusedMultiplyAdd(Vector512.Load(a1 + l), vb, c1);
                    c2 = Avx512F.FusedMultiplyAdd(Vector512.Load(a2 + l), vb, c2);
                    c3 = Avx512F.FusedMultiplyAdd(Vector512.Load(a3 + l), vb, c3);
                }
                Store4(c + j * ldc + i, c0, c1, c2, c3);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(float* y, Vector512<float> r0, Vector512<float> r1, Vector512<float> r2, Vector512<float> r3)
    {
        y[0] = Lanes.Reduce16(r0);
        y[1] = Lanes.Reduce16(r1);
        y[2] = Lanes.Reduce16(r2);
        y[3] = Lanes.Reduce16(r3);
    }

    /// <summary><see cref="FloatTile"/>'s arithmetic with 256-bit vectors (AVX2 machines): each 16-lane accumulator held as
    /// two halves, two rows by two tokens at a time.</summary>
    internal static void FloatTile256(float* a, long lda, int m, float* b, long ldb, int n, int k, float* c, long ldc)
    {
        for (int i = 0; i < m; i += 2)
        {
            float* a0 = a + i * lda, a1 = a0 + lda;
            int j = 0;
            for (; j + 2 <= n; j += 2)
            {
                float* b0 = b + j * ldb, b1 = b0 + ldb;
                Vector256<float> c00l = default, c00h = default, c01l = default, c01h = default;
                Vector256<float> c10l = default, c10h = default, c11l = default, c11h = default;
                for (int l = 0; l < k; l += 16)
                {
                    var a0l = Vector256.Load(a0 + l); var a0h = Vector256.Load(a0 + l + 8);
                    var a1l = Vector256.Load(a1 + l); var a1h = Vector256.Load(a1 + l + 8);
                    var bl = Vector256.Load(b0 + l); var bh = Vector256.Load(b0 + l + 8);
                    c00l = Fma.MultiplyAdd(a0l, bl, c00l); c00h = Fma.MultiplyAdd(a0h, bh, c00h);
                    c01l = Fma.MultiplyAdd(a1l, bl, c01l); c01h = Fma.MultiplyAdd(a1h, bh, c01h);
                    bl = Vector256.Load(b1 + l); bh = Vector256.Load(b1 + l + 8);
                    c10l = Fma.MultiplyAdd(a0l, bl, c10l); c10h = Fma.MultiplyAdd(a0h, bh, c10h);
                    c11l = Fma.MultiplyAdd(a1l, bl, c11l); c11h = Fma.MultiplyAdd(a1h, bh, c11h);
                }
                float* y0 = c + j * ldc + i;
                y0[0] = Lanes.Reduce16(c00l, c00h); y0[1] = Lanes.Reduce16(c01l, c01h);
                y0[ldc] = Lanes.Reduce16(c10l, c10h); y0[ldc + 1] = Lanes.Reduce16(c11l, c11h);
            }
            for (; j < n; j++)
            {
                float* b0 = b + j * ldb;
                Vector256<float> c0l = default, c0h = default, c1l = default, c1h = default;
                for (int l = 0; l < k; l += 16)
                {
                    var bl = Vector256.Load(b0 + l); var bh = Vector256.Load(b0 + l + 8);
                    c0l = Fma.MultiplyAdd(Vector256.Load(a0 + l), bl, c0l); c0h = Fma.MultiplyAdd(Vector256.Load(a0 + l + 8), bh, c0h);
                    c1l = Fma.MultiplyAdd(Vector256.Load(a1 + l), bl, c1l); c1h = Fma.MultiplyAdd(Vector256.Load(a1 + l + 8), bh, c1h);
                }
                c[j * ldc + i] = Lanes.Reduce16(c0l, c0h);
                c[j * ldc + i + 1] = Lanes.Reduce16(c1l, c1h);
            }
        }
    }

    /// <summary><see cref="FloatTile"/>'s arithmetic one output at a time, in scalar code: sixteen lanes, one fused
    /// multiply-add per lane and step, the same final reduction.</summary>
    internal static void FloatTileScalar(float* a, long lda, int m, float* b, long ldb, int n, int k, float* c, long ldc)
    {
        Span<float> acc = stackalloc float[16];
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++)
            {
                acc.Clear();
                float* ar = a + i * lda, br = b + j * ldb;
                for (int l = 0; l < k; l += 16)
                    for (int e = 0; e < 16; e++)
                        acc[e] = MathF.FusedMultiplyAdd(ar[l + e], br[l + e], acc[e]);
                c[j * ldc + i] = Lanes.Reduce16(acc);
            }
    }

    private static void RunIq4Nl(Weight w, byte[] act, int actRowSize, int n, float[] y, int threads)
    {
        int rows = w.Rows, cols = w.Columns, rowSize = w.RowSize, blocks = cols / 32;
        int rowChunk = Math.Clamp((rows / Math.Max(1, threads * 4) + 3) & ~3, 4, 64);
        int rowChunks = (rows + rowChunk - 1) / rowChunk, tokenChunks = (n + TokenChunk - 1) / TokenChunk;
        byte* data = w.Data;
        bool simd = Simd.Level >= SimdLevel.Avx2 && Fma.IsSupported;
        Workers.Each(rowChunks * tokenChunks, threads, i =>
        {
            int r0 = i % rowChunks * rowChunk, t0 = i / rowChunks * TokenChunk;
            int rc = Math.Min(rowChunk, rows - r0), tc = Math.Min(TokenChunk, n - t0);
            fixed (byte* pb = act)
            fixed (float* py = y)
            {
                byte* a = data + (long)r0 * rowSize, b = pb + (long)t0 * actRowSize;
                float* c = py + (long)t0 * rows + r0;
                if (simd) Iq4NlTile(a, rowSize, rc, b, actRowSize, tc, blocks, c, rows);
                else Iq4NlTileScalar(a, rowSize, rc, b, actRowSize, tc, blocks, c, rows);
            }
        });
    }

    private const int Iq4Block = 18, Q8Block = 34;

    /// <summary>IQ4_NL rows against Q8_0 activation rows, <c>tinyBLAS_Q0_AVX</c>'s arithmetic, four rows by four tokens at a time.</summary>
    internal static void Iq4NlTile(byte* a, long lda, int m, byte* b, long ldb, int n, int blocks, float* c, long ldc)
    {
        fixed (sbyte* pv = Iq4Values.KValues)
        {
            var values = Sse2.LoadVector128(pv);
            int i = 0;
            for (; i + 4 <= m; i += 4)
            {
                byte* a0 = a + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
                int j = 0;
                for (; j + 4 <= n; j += 4)
                {
                    byte* b0 = b + j * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
                    Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
                    Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
                    Vector256<float> c20 = default, c21 = default, c22 = default, c23 = default;
                    Vector256<float> c30 = default, c31 = default, c32 = default, c33 = default;
                    for (int l = 0; l < blocks; l++)
                    {
                        byte* x0 = a0 + l * Iq4Block, x1 = a1 + l * Iq4Block, x2 = a2 + l * Iq4Block, x3 = a3 + l * Iq4Block;
                        var q0 = IQ4_NL.Expand(Sse2.LoadVector128(x0 + 2), values);
                        var q1 = IQ4_NL.Expand(Sse2.LoadVector128(x1 + 2), values);
                        var q2 = IQ4_NL.Expand(Sse2.LoadVector128(x2 + 2), values);
                        var q3 = IQ4_NL.Expand(Sse2.LoadVector128(x3 + 2), values);
                        float d0 = Fp16.ToFloat(*(ushort*)x0), d1 = Fp16.ToFloat(*(ushort*)x1), d2 = Fp16.ToFloat(*(ushort*)x2), d3 = Fp16.ToFloat(*(ushort*)x3);
                        Step4(b0 + l * Q8Block, q0, q1, q2, q3, d0, d1, d2, d3, ref c00, ref c01, ref c02, ref c03);
                        Step4(b1 + l * Q8Block, q0, q1, q2, q3, d0, d1, d2, d3, ref c10, ref c11, ref c12, ref c13);
                        Step4(b2 + l * Q8Block, q0, q1, q2, q3, d0, d1, d2, d3, ref c20, ref c21, ref c22, ref c23);
                        Step4(b3 + l * Q8Block, q0, q1, q2, q3, d0, d1, d2, d3, ref c30, ref c31, ref c32, ref c33);
                    }
                    float* y0 = c + j * ldc + i;
                    y0[0] = Lanes.Hsum8(c00); y0[1] = Lanes.Hsum8(c01); y0[2] = Lanes.Hsum8(c02); y0[3] = Lanes.Hsum8(c03);
                    y0 += ldc;
                    y0[0] = Lanes.Hsum8(c10); y0[1] = Lanes.Hsum8(c11); y0[2] = Lanes.Hsum8(c12); y0[3] = Lanes.Hsum8(c13);
                    y0 += ldc;
                    y0[0] = Lanes.Hsum8(c20); y0[1] = Lanes.Hsum8(c21); y0[2] = Lanes.Hsum8(c22); y0[3] = Lanes.Hsum8(c23);
                    y0 += ldc;
                    y0[0] = Lanes.Hsum8(c30); y0[1] = Lanes.Hsum8(c31); y0[2] = Lanes.Hsum8(c32); y0[3] = Lanes.Hsum8(c33);
                }
                for (; j < n; j++)
                    for (int r = 0; r < 4; r++)
                        c[j * ldc + i + r] = Iq4NlDot(a + (i + r) * lda, b + j * ldb, blocks, values);
            }
            for (; i < m; i++)
                for (int j = 0; j < n; j++)
                    c[j * ldc + i] = Iq4NlDot(a + i * lda, b + j * ldb, blocks, values);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step4(byte* y, Vector256<sbyte> q0, Vector256<sbyte> q1, Vector256<sbyte> q2, Vector256<sbyte> q3,
        float d0, float d1, float d2, float d3, ref Vector256<float> c0, ref Vector256<float> c1, ref Vector256<float> c2, ref Vector256<float> c3)
    {
        float dy = Fp16.ToFloat(*(ushort*)y);
        var qy = Avx.LoadVector256((sbyte*)(y + 2));
        c0 = Fma.MultiplyAdd(Vector256.Create(d0 * dy), Avx.ConvertToVector256Single(IQ4_NL.DotQuads(q0, qy)), c0);
        c1 = Fma.MultiplyAdd(Vector256.Create(d1 * dy), Avx.ConvertToVector256Single(IQ4_NL.DotQuads(q1, qy)), c1);
        c2 = Fma.MultiplyAdd(Vector256.Create(d2 * dy), Avx.ConvertToVector256Single(IQ4_NL.DotQuads(q2, qy)), c2);
        c3 = Fma.MultiplyAdd(Vector256.Create(d3 * dy), Avx.ConvertToVector256Single(IQ4_NL.DotQuads(q3, qy)), c3);
    }

    private static float Iq4NlDot(byte* x, byte* y, int blocks, Vector128<sbyte> values)
    {
        var acc = Vector256<float>.Zero;
        for (int l = 0; l < blocks; l++, x += Iq4Block, y += Q8Block)
        {
            var q = IQ4_NL.Expand(Sse2.LoadVector128(x + 2), values);
            var p = IQ4_NL.DotQuads(q, Avx.LoadVector256((sbyte*)(y + 2)));
            acc = Fma.MultiplyAdd(Vector256.Create(Fp16.ToFloat(*(ushort*)x) * Fp16.ToFloat(*(ushort*)y)), Avx.ConvertToVector256Single(p), acc);
        }
        return Lanes.Hsum8(acc);
    }

    /// <summary><see cref="Iq4NlTile"/>'s arithmetic in scalar code: eight lanes, each the sum of four products per block
    /// (weights 4e..4e+3), one fused multiply-add per lane and block, the same horizontal sum.</summary>
    internal static void Iq4NlTileScalar(byte* a, long lda, int m, byte* b, long ldb, int n, int blocks, float* c, long ldc)
    {
        var values = Iq4Values.KValues;
        Span<float> acc = stackalloc float[8];
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++)
            {
                acc.Clear();
                byte* x = a + i * lda, y = b + j * ldb;
                for (int l = 0; l < blocks; l++, x += Iq4Block, y += Q8Block)
                {
                    float d = Fp16.ToFloat(*(ushort*)x) * Fp16.ToFloat(*(ushort*)y);
                    sbyte* qy = (sbyte*)(y + 2);
                    for (int e = 0; e < 8; e++)
                    {
                        int sum = 0;
                        for (int q = 4 * e; q < 4 * e + 4; q++)
                            sum += values[q < 16 ? x[2 + q] & 0xf : x[2 + q - 16] >> 4] * qy[q];
                        acc[e] = MathF.FusedMultiplyAdd(d, sum, acc[e]);
                    }
                }
                c[j * ldc + i] = Lanes.Hsum8(acc);
            }
    }
}
