using System.Runtime.CompilerServices;

namespace Squeeze.Quants;

/// <summary>
/// The grid-search tables the 1- and 2-bit i-quant quantizers use (ggml's <c>iq2xs_init_impl</c>): every grid point
/// as 8 bytes <c>2l+1</c>, a map from a point's 2-bit-per-coordinate code to its grid index, and, for codes that
/// are not on the grid, the list of grid points at the <c>nwant</c> smallest squared distances, ordered by
/// (distance, grid index). Built once per grid on first use, on the calling thread, deterministically.
/// </summary>
/// <remarks>
/// ggml derives its point codes from tables in ggml-quants.c (<c>kgrid_2bit_256</c>, ...); those equal the codes of
/// the ggml-common.h grids in <see cref="Iq2Grids"/> (IQ2 magnitudes 8, 25, 43 are levels 0, 1, 2; IQ1 values -1,
/// 0, 1 are levels 0, 1, 2), so they are derived here instead of stored twice. The quantizers only ever look up
/// codes whose coordinates are 0..2, so neighbour lists are built for those 3^8 codes only.
/// </remarks>
internal sealed class Iq2Search
{
    /// <summary>Codes are 8 coordinates of 2 bits; ggml sizes its map for codes up to 0xAAAB.</summary>
    public const int KMapSize = 43692;

    /// <summary>Marks a code the quantizers cannot produce (a coordinate of 3).</summary>
    private const int Unreachable = int.MinValue;

    /// <summary>Grid points, 8 bytes <c>2l+1</c> each (<c>kgrid_q2xs</c>).</summary>
    public readonly ulong[] Grid;

    /// <summary>Grid point j, coordinate i, as a float: <c>GridValues[8*j + i] = 2l+1</c>.</summary>
    public readonly float[] GridValues;

    /// <summary>Grid point j, coordinate i, as its level l (0..2): <c>Levels[8*j + i]</c>.</summary>
    public readonly sbyte[] Levels;

    /// <summary>Code to grid index (&gt;= 0) or <c>-(offset + 1)</c> of its neighbour list in <see cref="Neighbours"/>.</summary>
    public readonly int[] Map;

    /// <summary>Neighbour lists: a count, then that many grid indices.</summary>
    public readonly ushort[] Neighbours;

    /// <summary>
    /// The neighbour lists again for vector code, eight neighbours at a time: block b of the list at offset
    /// <c>off</c> starts at <c>SoaStart[off] + 64*b</c> and holds, for coordinate i, the 8 neighbours' grid bytes
    /// (<c>2l+1</c>) at <c>+ 8*i</c>. A last partial block repeats the list's last neighbour.
    /// </summary>
    public readonly byte[] NeighbourBytes;

    /// <summary>Start of each off-grid code's list in <see cref="NeighbourBytes"/>, indexed by code.</summary>
    public readonly int[] SoaStart;

    private Iq2Search(ulong[] source, bool signedLevels, int nwant)
    {
        int n = source.Length;
        Grid = new ulong[n];
        GridValues = new float[8 * n];
        Levels = new sbyte[8 * n];
        Map = new int[KMapSize];
        Array.Fill(Map, Unreachable);
        for (int j = 0; j < n; j++)
        {
            ulong g = 0;
            int code = 0;
            for (int i = 0; i < 8; i++)
            {
                byte b = (byte)(source[j] >> (8 * i));
                int l = signedLevels ? (sbyte)b + 1 : b switch { 8 => 0, 25 => 1, 43 => 2, _ => -1 };
                if ((uint)l > 2) throw new InvalidOperationException($"grid entry {j} has an unexpected value {b}");
                g |= (ulong)(2 * l + 1) << (8 * i);
                GridValues[8 * j + i] = 2 * l + 1;
                Levels[8 * j + i] = (sbyte)l;
                code |= l << (2 * i);
            }
            if (Map[code] != Unreachable) throw new InvalidOperationException($"grid entries {Map[code]} and {j} coincide");
            Grid[j] = g;
            Map[code] = j;
        }

        var neighbours = new List<ushort>(1 << 16);
        Span<int> d2 = stackalloc int[n];
        Span<int> histogram = stackalloc int[8 * 16 + 1];
        Span<int> pos = stackalloc int[8];
        for (int code = 0; code < KMapSize; code++)
        {
            if (Map[code] != Unreachable || !AllLevelsBelow3(code)) continue;
            for (int i = 0; i < 8; i++) pos[i] = 2 * ((code >> (2 * i)) & 3) + 1;
            histogram.Clear();
            for (int j = 0; j < n; j++)
            {
                int s = 0;
                for (int i = 0; i < 8; i++)
                {
                    int diff = 2 * Levels[8 * j + i] + 1 - pos[i];
                    s += diff * diff;
                }
                d2[j] = s;
                histogram[s]++;
            }
            // All points at the nwant smallest distinct distances, by (distance, index): ggml sorts the
            // (distance, index) pairs and cuts after the nwant-th distinct distance.
            Map[code] = -(neighbours.Count + 1);
            int countAt = neighbours.Count;
            neighbours.Add(0);
            int have = 0;
            for (int dist = 0; dist < histogram.Length && have < nwant; dist++)
            {
                if (histogram[dist] == 0) continue;
                have++;
                for (int j = 0; j < n; j++) if (d2[j] == dist) neighbours.Add((ushort)j);
            }
            neighbours[countAt] = (ushort)(neighbours.Count - countAt - 1);
        }
        Neighbours = neighbours.ToArray();

        SoaStart = new int[KMapSize];
        var bytes = new List<byte>();
        for (int code = 0; code < KMapSize; code++)
        {
            if (Map[code] >= 0 || Map[code] == Unreachable) continue;
            int off = -Map[code] - 1;
            int num = Neighbours[off];
            SoaStart[code] = bytes.Count;
            for (int b = 0; b < num; b += 8)
                for (int i = 0; i < 8; i++)
                    for (int l = 0; l < 8; l++)
                        bytes.Add((byte)(2 * Levels[8 * Neighbours[off + 1 + Math.Min(b + l, num - 1)] + i] + 1));
        }
        NeighbourBytes = bytes.ToArray();
    }

    private static bool AllLevelsBelow3(int code)
    {
        for (int i = 0; i < 8; i++) if (((code >> (2 * i)) & 3) == 3) return false;
        return true;
    }

    /// <summary>The offset of the neighbour list of an off-grid <paramref name="code"/> (whose map entry is negative).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int NeighbourOffset(int code)
    {
        int m = Map[code];
        if (m == Unreachable) throw new InvalidOperationException($"grid code {code:x4} has no neighbour list");
        return -m - 1;
    }

    /// <summary>Grid index of <paramref name="code"/>, or -1 when it is off the grid (ggml's <c>kmap_q2xs[u]</c> &lt; 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int GridIndex(int code)
    {
        if ((uint)code >= KMapSize) throw new InvalidOperationException($"grid code {code:x4} is out of range");
        int m = Map[code];
        return m >= 0 ? m : -1;
    }

    private static readonly Lazy<Iq2Search> s_iq2xxs = new(() => new Iq2Search(Iq2Grids.IQ2XXS, false, 2));
    private static readonly Lazy<Iq2Search> s_iq2xs = new(() => new Iq2Search(Iq2Grids.IQ2XS, false, 2));
    private static readonly Lazy<Iq2Search> s_iq2s = new(() => new Iq2Search(Iq2Grids.IQ2S, false, 1));
    private static readonly Lazy<Iq2Search> s_iq1 = new(() => new Iq2Search(Iq2Grids.IQ1S, true, 3));

    /// <summary>IQ2_XXS: 256 points, neighbours at the 2 nearest distances.</summary>
    public static Iq2Search IQ2_XXS => s_iq2xxs.Value;

    /// <summary>IQ2_XS: 512 points, neighbours at the 2 nearest distances.</summary>
    public static Iq2Search IQ2_XS => s_iq2xs.Value;

    /// <summary>IQ2_S: 1024 points, neighbours at the nearest distance.</summary>
    public static Iq2Search IQ2_S => s_iq2s.Value;

    /// <summary>IQ1_S and IQ1_M (one shared table in ggml): 2048 points, neighbours at the 3 nearest distances.</summary>
    public static Iq2Search IQ1 => s_iq1.Value;
}
