using System.Runtime.CompilerServices;

namespace Squeeze.Quants;

/// <summary>
/// The search structures IQ3_XXS and IQ3_S quantizers need (ggml's <c>iq3xs_init_impl</c>): the grid as signed
/// odd levels, a map from every 4 x 3-bit point to its grid index, and for points off the grid the list of grid
/// points at the nearest two (256-point grid) or three (512-point grid) squared distances.
/// Built once, on first use, deterministically; safe to share between threads once built.
/// </summary>
internal sealed class Iq3Search
{
    private static readonly Lazy<Iq3Search> Lazy256 = new(() => new Iq3Search(Iq3Grids.KGrid256, nwant: 2), LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lazy<Iq3Search> Lazy512 = new(() => new Iq3Search(Iq3Grids.KGrid512, nwant: 3), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The tables of IQ3_XXS's 256-point grid.</summary>
    public static Iq3Search Grid256 => Lazy256.Value;

    /// <summary>The tables of IQ3_S's 512-point grid.</summary>
    public static Iq3Search Grid512 => Lazy512.Value;

    private const int MapSize = 4096;

    /// <summary>Grid point <c>g</c> element <c>i</c> as the odd level <c>2l+1</c> (1..15) at <c>[4g+i]</c>.</summary>
    public readonly sbyte[] Points;

    /// <summary>
    /// For a point <c>u = l0 | l1 &lt;&lt; 3 | l2 &lt;&lt; 6 | l3 &lt;&lt; 9</c>: its grid index when on the grid, else
    /// <c>-(offset + 1)</c> where <see cref="Neighbours"/><c>[offset]</c> is the count and the indices follow.
    /// </summary>
    public readonly int[] Map;

    /// <summary>Neighbour lists of the points off the grid, each a count followed by grid indices, nearest first.</summary>
    public readonly ushort[] Neighbours;

    private Iq3Search(ReadOnlySpan<ushort> kgrid, int nwant)
    {
        int gridSize = kgrid.Length;
        Points = new sbyte[4 * gridSize];
        Map = new int[MapSize];
        Array.Fill(Map, -1);
        for (int g = 0; g < gridSize; g++)
        {
            for (int i = 0; i < 4; i++) Points[4 * g + i] = (sbyte)(2 * ((kgrid[g] >> 3 * i) & 7) + 1);
            Map[kgrid[g]] = g;
        }

        // ggml sorts all grid points by (distance, index) and keeps every point at the nwant smallest distinct
        // distances; bucketing by distance while walking the grid in index order yields the same lists.
        const int maxD2 = 4 * 14 * 14;
        var bucketCount = new int[maxD2 + 1];
        var buckets = new ushort[maxD2 + 1][];
        for (int d = 0; d <= maxD2; d++) buckets[d] = new ushort[gridSize];
        var lists = new List<ushort>(MapSize * 8);
        Span<int> pos = stackalloc int[4];
        for (int u = 0; u < MapSize; u++)
        {
            if (Map[u] >= 0) continue;
            for (int k = 0; k < 4; k++) pos[k] = 2 * ((u >> 3 * k) & 7) + 1;
            Array.Clear(bucketCount);
            for (int g = 0; g < gridSize; g++)
            {
                int d2 = 0;
                for (int k = 0; k < 4; k++)
                {
                    int diff = Points[4 * g + k] - pos[k];
                    d2 += diff * diff;
                }
                buckets[d2][bucketCount[d2]++] = (ushort)g;
            }
            int countAt = lists.Count;
            lists.Add(0);
            int n = 0, have = 0;
            for (int d = 0; d <= maxD2 && have < nwant; d++)
            {
                if (bucketCount[d] == 0) continue;
                have++;
                for (int j = 0; j < bucketCount[d]; j++) lists.Add(buckets[d][j]);
                n += bucketCount[d];
            }
            lists[countAt] = (ushort)n;
            Map[u] = -(countAt + 1);
        }
        Neighbours = lists.ToArray();

        LaneStart = new int[MapSize];
        var lanes = new List<sbyte>(Neighbours.Length * 8);
        for (int u = 0; u < MapSize; u++)
        {
            if (Map[u] >= 0) { LaneStart[u] = -1; continue; }
            int offset = -Map[u] - 1;
            int count = Neighbours[offset];
            LaneStart[u] = lanes.Count;
            for (int c = 0; c < count; c += 8)
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 8; j++)
                        lanes.Add(c + j < count ? (sbyte)((Points[4 * Neighbours[offset + 1 + c + j] + i] - 1) / 2) : (sbyte)0);
        }
        // Padding: the 16-wide search reads a second chunk past a list's last one (masked off).
        for (int i = 0; i < 32; i++) lanes.Add(0);
        NeighbourLanes = lanes.ToArray();
    }

    /// <summary>
    /// The neighbour lists' points transposed for SIMD: for an off-grid point u, starting at <see cref="LaneStart"/>[u],
    /// chunks of eight candidates stored as four rows of eight levels 0..7 (element i of candidate c+j at 32c/8 + 8i + j).
    /// </summary>
    public readonly sbyte[] NeighbourLanes;

    /// <summary>Where each off-grid point's chunks start in <see cref="NeighbourLanes"/> (-1 for points on the grid).</summary>
    public readonly int[] LaneStart;

    /// <summary>
    /// Among the neighbours listed at <paramref name="offset"/>, the grid point nearest to <paramref name="xval"/>
    /// at <paramref name="scale"/> in weighted squared error (ggml's <c>iq3_find_best_neighbour</c>); writes its
    /// levels to <paramref name="L"/> and returns its index.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int FindBestNeighbour(int offset, ReadOnlySpan<float> xval, ReadOnlySpan<float> weight, float scale, Span<sbyte> L)
    {
        var neighbours = Neighbours;
        var points = Points;
        int count = neighbours[offset];
        float bestD2 = float.MaxValue;
        int gridIndex = -1;
        float x0 = xval[0], x1 = xval[1], x2 = xval[2], x3 = xval[3];
        float w0 = weight[0], w1 = weight[1], w2 = weight[2], w3 = weight[3];
        for (int j = 1; j <= count; j++)
        {
            int g = neighbours[offset + j];
            int p = 4 * g;
            float diff = scale * points[p] - x0;
            float d2 = 0;
            d2 += w0 * diff * diff;
            diff = scale * points[p + 1] - x1;
            d2 += w1 * diff * diff;
            diff = scale * points[p + 2] - x2;
            d2 += w2 * diff * diff;
            diff = scale * points[p + 3] - x3;
            d2 += w3 * diff * diff;
            if (d2 < bestD2)
            {
                bestD2 = d2;
                gridIndex = g;
            }
        }
        if (gridIndex < 0) throw new InvalidOperationException("IQ3 quantizer: no neighbour has a finite error (non-finite input); ggml aborts here too");
        for (int i = 0; i < 4; i++) L[i] = (sbyte)((points[4 * gridIndex + i] - 1) / 2);
        return gridIndex;
    }
}
