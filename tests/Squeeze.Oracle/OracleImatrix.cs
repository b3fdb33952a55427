using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Squeeze.Oracle;

/// <summary>
/// llama-imatrix's collector, reproduced over llama.cpp's own forward pass: installed as <c>cb_eval</c>, it asks for the
/// same nodes <c>collect_imatrix</c> asks for (every MUL_MAT_ID; MUL_MAT with at least 16 F32 token rows whose weight is
/// named <c>blk.*</c>, or <c>output.weight</c> with <see cref="ProcessOutput"/>) and accumulates Σx² per column in float
/// and the token count per weight, as tools/imatrix/imatrix.cpp (815a2a591) does for dense weights.
/// </summary>
public sealed unsafe class OracleImatrix : IDisposable
{
    // struct ggml_tensor (ggml.h at 815a2a591): type @0, ne[4] @16, nb[4] @48, op @80, src[10] @152, data @248, name[64] @256.
    private const int TypeOffset = 0, NeOffset = 16, NbOffset = 48, OpOffset = 80, SrcOffset = 152, DataOffset = 248, NameOffset = 256;
    private const int TensorSize = 336;

    private GCHandle _self;
    private static int _opMulMat = -1, _opMulMatId = -1;

    public OracleImatrix(bool processOutput = false)
    {
        OracleLibrary.EnsureLoaded();
        // The layout above is checked against ggml itself: ggml_tensor_overhead() = sizeof(ggml_object) + sizeof(ggml_tensor).
        if ((long)Native.ggml_tensor_overhead() != 32 + TensorSize)
            throw new InvalidOperationException($"ggml_tensor_overhead() is {Native.ggml_tensor_overhead()}, not {32 + TensorSize}: the struct layout changed");
        if (_opMulMat < 0)
            for (int op = 0; op < 100 && (_opMulMat < 0 || _opMulMatId < 0); op++)
            {
                var name = Native.Utf8(Native.ggml_op_name(op));
                if (name == "MUL_MAT") _opMulMat = op;
                else if (name == "MUL_MAT_ID") _opMulMatId = op;
            }
        ProcessOutput = processOutput;
        _self = GCHandle.Alloc(this);
    }

    public bool ProcessOutput { get; }

    /// <summary>
    /// When set, every 2-D F32 matrix product of the graph (whatever its weight and batch size) is also handed over, as
    /// (weight name, columns, rows, contiguous rows): lets a test run another collector's rules over llama.cpp's graph.
    /// </summary>
    public Action<string, int, long, nint>? Mirror { get; init; }

    /// <summary>Graph nodes to copy out by name (e.g. <c>inp_embd</c>, <c>l_out-0</c>): 2-D F32, contiguous; see <see cref="Captured"/>.</summary>
    public Func<string, bool>? Capture { get; init; }

    /// <summary>Whether <see cref="Capture"/> also sees matrix products (their outputs; they are then not collected).</summary>
    public bool CaptureProducts { get; init; }

    /// <summary>The last values of each captured node, as (columns, rows, data).</summary>
    public Dictionary<string, (int Columns, int Rows, float[] Data)> Captured { get; } = new(StringComparer.Ordinal);

    /// <summary>Matrix products of more than 2 dimensions whose weight is named <c>blk.*</c> (not mirrored; a test can assert none).</summary>
    public int UnmirroredBlockProducts { get; private set; }

    /// <summary>Σx² per column (float, accumulated row by row) and token count, by weight name.</summary>
    public Dictionary<string, (float[] Sums, long Count)> Stats { get; } = new(StringComparer.Ordinal);

    /// <summary>Expert matrix products seen (Squeeze's forward pass has none yet; a test can assert this is 0).</summary>
    public int ExpertCalls { get; private set; }

    /// <summary>The callback and user data to pass to <see cref="OracleModel"/>.</summary>
    public nint Callback => (nint)(delegate* unmanaged[Cdecl]<nint, byte, nint, byte>)&Eval;
    public nint UserData => GCHandle.ToIntPtr(_self);

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static byte Eval(nint t, byte ask, nint userData)
    {
        var self = (OracleImatrix)GCHandle.FromIntPtr(userData).Target!;
        // An exception must not cross into native code: keep the first one for ThrowIfFailed.
        try { return self.Collect((byte*)t, ask != 0) ? (byte)1 : (byte)0; }
        catch (Exception e) { self.Error ??= e; return ask != 0 ? (byte)0 : (byte)1; }
    }

    /// <summary>The first exception the callback hit, if any.</summary>
    public Exception? Error { get; private set; }

    /// <summary>Rethrows an exception the callback hit.</summary>
    public void ThrowIfFailed()
    {
        if (Error is not null) throw new InvalidOperationException("the eval callback failed", Error);
    }

    private bool Collect(byte* t, bool ask)
    {
        int op = *(int*)(t + OpOffset);
        byte* src0 = *(byte**)(t + SrcOffset);
        byte* src1 = *(byte**)(t + SrcOffset + 8);
        if (Capture is not null && (op != _opMulMat && op != _opMulMatId || CaptureProducts))
        {
            var node = Name(t);
            var ne = (long*)(t + NeOffset);
            var nb = (nuint*)(t + NbOffset);
            bool plain = *(int*)(t + TypeOffset) == 0 && ne[2] * ne[3] == 1 && nb[0] == 4 && nb[1] == (nuint)(4 * ne[0]);
            if (!plain || !Capture(node)) return !ask;
            if (ask) return true;
            Captured[node] = ((int)ne[0], (int)ne[1], new ReadOnlySpan<float>(*(void**)(t + DataOffset), checked((int)(ne[0] * ne[1]))).ToArray());
            return true;
        }
        if (ask)
        {
            if (op == _opMulMatId) return true;
            if (op != _opMulMat) return false;
            if (Mirror is not null && *(int*)(src1 + TypeOffset) == 0) return true;
            return LlamaImatrixWants(src0, src1);
        }
        if (op == _opMulMatId) { ExpertCalls++; return true; }

        var wname = Name(src0);
        var ne0 = (long*)(src0 + NeOffset);
        var ne1 = (long*)(src1 + NeOffset);
        var nb1 = (nuint*)(src1 + NbOffset);
        int cols = checked((int)ne1[0]);
        long nrows = ne1[1];
        byte* data = *(byte**)(src1 + DataOffset);
        bool flat = ne0[2] * ne0[3] == 1 && ne1[2] * ne1[3] == 1;
        if (Mirror is not null)
        {
            var nb = (nuint*)(src1 + NbOffset);
            if (flat && nb[0] == 4 && nb[1] == (nuint)(4 * cols)) Mirror(wname, cols, nrows, (nint)data);
            else if (wname.StartsWith("blk.", StringComparison.Ordinal)) UnmirroredBlockProducts++;
        }
        if (!LlamaImatrixWants(src0, src1)) return true;
        if (!flat) throw new InvalidOperationException($"{wname}: 3-D matrix products are not handled here");
        if (!Stats.TryGetValue(wname, out var e)) e = (new float[cols], 0);
        for (long r = 0; r < nrows; r++)
        {
            float* x = (float*)(data + (long)nb1[1] * r);
            for (int j = 0; j < cols; j++) e.Sums[j] += x[j] * x[j];
        }
        Stats[wname] = (e.Sums, e.Count + nrows);
        return true;
    }

    /// <summary>collect_imatrix's ask rule for MUL_MAT: at least 16 F32 rows, a weight named blk.* (or output.weight).</summary>
    private bool LlamaImatrixWants(byte* src0, byte* src1)
    {
        long rows = ((long*)(src1 + NeOffset))[1];
        if (rows < 16 || *(int*)(src1 + TypeOffset) != 0 /* F32 */) return false;
        var name = Name(src0);
        return name.StartsWith("blk.", StringComparison.Ordinal) || (ProcessOutput && name == "output.weight");
    }

    private static string Name(byte* tensor)
    {
        var span = new ReadOnlySpan<byte>(tensor + NameOffset, 64);
        int n = span.IndexOf((byte)0);
        var name = Encoding.UTF8.GetString(n < 0 ? span : span[..n]);
        // filter_tensor_name: backend prefixes and suffixes (CUDA0#name#0) are stripped.
        int p = name.IndexOf('#');
        if (p >= 0)
        {
            name = name[(p + 1)..];
            int q = name.IndexOf('#');
            if (q >= 0) name = name[..q];
        }
        return name;
    }

    public void Dispose()
    {
        if (_self.IsAllocated) _self.Free();
    }

    /// <summary>One entry for <see cref="WriteGguf"/>: raw Σx² and one count per matrix.</summary>
    public sealed record Entry(string Name, float[] Values, long[] Counts);

    /// <summary>
    /// Writes a GGUF imatrix with gguf.cpp exactly as llama-imatrix's <c>save_imatrix</c> drives it: an empty context,
    /// <c>general.type</c>, <c>imatrix.datasets</c>, <c>imatrix.chunk_count</c>, <c>imatrix.chunk_size</c>, then per
    /// name in sorted order 2-D F32 tensors <c>.in_sum2 [nval/nmat, nmat]</c> and <c>.counts [1, nmat]</c>.
    /// </summary>
    public static void WriteGguf(string path, IEnumerable<Entry> entries, IReadOnlyList<string> datasets, uint chunkCount, uint chunkSize)
    {
        OracleLibrary.EnsureLoaded();
        var list = entries.OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
        nuint size = 0, overhead = Native.ggml_tensor_overhead();
        static nuint Pad(nuint x) => (x + 15) & ~(nuint)15;
        foreach (var e in list)
            size += Pad(overhead + (nuint)(4 * e.Values.Length)) + Pad(overhead + (nuint)(4 * e.Counts.Length));
        nint ctx = Native.ggml_init(new GgmlInitParams { MemSize = size, MemBuffer = 0, NoAlloc = 0 });
        nint gguf = Native.gguf_init_empty();
        var pins = new List<GCHandle>();
        try
        {
            Native.gguf_set_val_str(gguf, "general.type", "imatrix");
            var strings = datasets.Select(d => Encoding.UTF8.GetBytes(d + "\0")).ToArray();
            foreach (var s in strings) pins.Add(GCHandle.Alloc(s, GCHandleType.Pinned));
            var pointers = pins.Select(h => h.AddrOfPinnedObject()).ToArray();
            fixed (nint* p = pointers) Native.gguf_set_arr_str(gguf, "imatrix.datasets", (byte**)p, (nuint)pointers.Length);
            Native.gguf_set_val_u32(gguf, "imatrix.chunk_count", chunkCount);
            Native.gguf_set_val_u32(gguf, "imatrix.chunk_size", chunkSize);
            foreach (var e in list)
            {
                int nval = e.Values.Length, nmat = e.Counts.Length;
                if (nval == 0 || nmat == 0) continue;
                nint sums = Native.ggml_new_tensor_2d(ctx, 0, nval / nmat, nmat);
                nint counts = Native.ggml_new_tensor_2d(ctx, 0, 1, nmat);
                if (sums == 0 || counts == 0) throw new InvalidOperationException("ggml context too small");
                Native.ggml_set_name(sums, e.Name + ".in_sum2");
                Native.ggml_set_name(counts, e.Name + ".counts");
                e.Values.AsSpan().CopyTo(new Span<float>(*(void**)((byte*)sums + DataOffset), nval));
                var c = new Span<float>(*(void**)((byte*)counts + DataOffset), nmat);
                for (int j = 0; j < nmat; j++) c[j] = e.Counts[j];
                Native.gguf_add_tensor(gguf, sums);
                Native.gguf_add_tensor(gguf, counts);
            }
            if (!Native.gguf_write_to_file(gguf, path, false)) throw new IOException($"gguf.cpp could not write {path}");
        }
        finally
        {
            foreach (var h in pins) h.Free();
            Native.gguf_free(gguf);
            Native.ggml_free(ctx);
        }
    }
}
