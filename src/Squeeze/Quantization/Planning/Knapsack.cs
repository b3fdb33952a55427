namespace Squeeze.Quantization.Planning;

/// <summary>One choice for one item of a <see cref="MultipleChoiceKnapsack"/>: what it costs in bytes and in predicted error.</summary>
public readonly record struct KnapsackOption(long Bytes, double Error);

/// <summary>
/// The multiple-choice knapsack behind the planner: pick one option per item (one type per tensor) so that the bytes
/// fit a budget and the summed error is least. Two solvers, the better answer kept:
/// <list type="number">
/// <item>Lagrangian relaxation on each item's lower convex hull (taking hull steps in order of error saved per byte,
/// which is the sweep of the Lagrange multiplier from infinity down), then a greedy fill with any single upgrade that
/// still fits, then exchanges (one item down, another up) while they lower the error. The result leaves less slack
/// than the cheapest remaining upgrade of any item: the budget is hit to within one tensor's step.</item>
/// <item>An exact dynamic programme over Pareto fronts of (bytes, error), used when the fronts stay small enough
/// (<see cref="MaxExactStates"/>); it proves the first answer optimal or improves it.</item>
/// </list>
/// </summary>
public static class MultipleChoiceKnapsack
{
    /// <summary>States (partial solutions on the Pareto front) the exact solver may hold over all items before it gives up.</summary>
    public const int MaxExactStates = 4_000_000;

    /// <summary>The solution: one option index per item, with its totals and whether it is proven optimal.</summary>
    public sealed record Solution(int[] Choice, long Bytes, double Error, bool Exact);

    /// <summary>Solves the knapsack; throws <see cref="InvalidInputException"/> when even the smallest options do not fit.</summary>
    public static Solution Solve(IReadOnlyList<IReadOnlyList<KnapsackOption>> items, long budget, bool tryExact = true)
    {
        long minimum = 0;
        foreach (var item in items)
        {
            if (item.Count == 0) throw new ArgumentException("an item has no options", nameof(items));
            minimum += item.Min(o => o.Bytes);
        }
        if (minimum > budget)
            throw new InvalidInputException($"the budget of {budget:N0} bytes is below the smallest possible size ({minimum:N0} bytes)");
        var greedy = Greedy(items, budget);
        if (!tryExact) return greedy;
        var exact = Exact(items, budget);
        if (exact is null) return greedy;
        return exact.Error <= greedy.Error ? exact : greedy with { Exact = false };
    }

    /// <summary>The Lagrangian / greedy solver with exchange refinement (see the class summary).</summary>
    public static Solution Greedy(IReadOnlyList<IReadOnlyList<KnapsackOption>> items, long budget)
    {
        int n = items.Count;
        var choice = new int[n];
        long used = 0;
        // Start at each item's smallest option (least error among equal sizes).
        for (int i = 0; i < n; i++)
        {
            int best = 0;
            for (int k = 1; k < items[i].Count; k++)
            {
                var o = items[i][k]; var b = items[i][best];
                if (o.Bytes < b.Bytes || (o.Bytes == b.Bytes && o.Error < b.Error)) best = k;
            }
            choice[i] = best;
            used += items[i][best].Bytes;
        }

        // Lagrangian sweep: hull segments of every item in decreasing order of error saved per byte.
        var hulls = new List<int>[n];
        var segments = new List<(double Slope, int Item, int From, int To)>();
        for (int i = 0; i < n; i++)
        {
            hulls[i] = LowerHull(items[i]);
            for (int s = 0; s + 1 < hulls[i].Count; s++)
            {
                var a = items[i][hulls[i][s]]; var b = items[i][hulls[i][s + 1]];
                segments.Add(((a.Error - b.Error) / (b.Bytes - a.Bytes), i, hulls[i][s], hulls[i][s + 1]));
            }
        }
        // Ties (same slope) keep item order, so the result is deterministic.
        var ordered = segments.Select((s, idx) => (s, idx)).OrderByDescending(x => x.s.Slope).ThenBy(x => x.idx).Select(x => x.s).ToList();
        var blocked = new bool[n];
        foreach (var (_, item, from, to) in ordered)
        {
            if (blocked[item] || choice[item] != from) continue;
            long delta = items[item][to].Bytes - items[item][from].Bytes;
            if (used + delta > budget) { blocked[item] = true; continue; }
            choice[item] = to;
            used += delta;
        }

        Refine(items, budget, choice, ref used);
        double error = 0;
        for (int i = 0; i < n; i++) error += items[i][choice[i]].Error;
        return new Solution(choice, used, error, false);
    }

    /// <summary>
    /// Local improvement until none is left: the best single move that fits the slack and lowers the error, else the
    /// best pair (one item to a smaller option, another to a larger one) that fits and lowers the summed error.
    /// </summary>
    private static void Refine(IReadOnlyList<IReadOnlyList<KnapsackOption>> items, long budget, int[] choice, ref long used)
    {
        int n = items.Count;
        for (int round = 0; round < 100_000; round++)
        {
            long slack = budget - used;
            // Moves: (item, option, dBytes, dError).
            var ups = new List<(int Item, int Option, long DB, double DE)>();
            var downs = new List<(int Item, int Option, long DB, double DE)>();
            (int Item, int Option, double DE) bestSingle = (-1, -1, -1e-15);
            for (int i = 0; i < n; i++)
            {
                var cur = items[i][choice[i]];
                for (int k = 0; k < items[i].Count; k++)
                {
                    if (k == choice[i]) continue;
                    var o = items[i][k];
                    long db = o.Bytes - cur.Bytes;
                    double de = o.Error - cur.Error;
                    if (db <= slack && de < bestSingle.DE) bestSingle = (i, k, de);
                    if (db > 0 && de < 0) ups.Add((i, k, db, de));
                    else if (db < 0 && de > 0) downs.Add((i, k, db, de));
                }
            }
            if (bestSingle.Item >= 0 && bestSingle.DE < -Tolerance(items, choice))
            {
                used += items[bestSingle.Item][bestSingle.Option].Bytes - items[bestSingle.Item][choice[bestSingle.Item]].Bytes;
                choice[bestSingle.Item] = bestSingle.Option;
                continue;
            }
            if (ups.Count == 0 || downs.Count == 0) return;
            // For each downgrade, the best upgrade of another item within the freed bytes: upgrades sorted by bytes with
            // a running best (two best, so that the downgraded item itself can be skipped).
            ups.Sort((a, b) => a.DB.CompareTo(b.DB));
            var best1 = new int[ups.Count]; var best2 = new int[ups.Count];
            for (int u = 0; u < ups.Count; u++)
            {
                int b1 = u > 0 ? best1[u - 1] : -1, b2 = u > 0 ? best2[u - 1] : -1;
                if (b1 < 0 || ups[u].DE < ups[b1].DE)
                {
                    if (b1 >= 0 && ups[b1].Item != ups[u].Item) b2 = b1;
                    b1 = u;
                }
                else if (ups[u].Item != ups[b1].Item && (b2 < 0 || ups[u].DE < ups[b2].DE)) b2 = u;
                best1[u] = b1; best2[u] = b2;
            }
            (int D, int U, double DE) bestPair = (-1, -1, 0);
            foreach (var (d, down) in downs.Select((d, idx) => (idx, d)))
            {
                long room = slack - down.DB; // bytes an upgrade may add
                int hi = UpperIndex(ups, room);
                if (hi < 0) continue;
                int u = best1[hi];
                if (ups[u].Item == down.Item) u = best2[hi];
                if (u < 0) continue;
                double de = down.DE + ups[u].DE;
                if (de < bestPair.DE) bestPair = (d, u, de);
            }
            if (bestPair.D < 0 || bestPair.DE >= -Tolerance(items, choice)) return;
            var dn = downs[bestPair.D]; var up = ups[bestPair.U];
            used += dn.DB + up.DB;
            choice[dn.Item] = dn.Option;
            choice[up.Item] = up.Option;
        }
    }

    /// <summary>Improvements smaller than this are rounding noise (they would let the refinement cycle).</summary>
    private static double Tolerance(IReadOnlyList<IReadOnlyList<KnapsackOption>> items, int[] choice)
    {
        double total = 0;
        for (int i = 0; i < items.Count; i++) total += Math.Abs(items[i][choice[i]].Error);
        return 1e-12 * total;
    }

    /// <summary>The last index of <paramref name="ups"/> (sorted by bytes) whose bytes are at most <paramref name="room"/>, or -1.</summary>
    private static int UpperIndex(List<(int Item, int Option, long DB, double DE)> ups, long room)
    {
        int lo = 0, hi = ups.Count - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            if (ups[mid].DB <= room) { found = mid; lo = mid + 1; } else hi = mid - 1;
        }
        return found;
    }

    /// <summary>
    /// Indices of the options on the lower convex hull of (bytes, error), by increasing bytes: the options a
    /// Lagrange multiplier can select. Dominated options (more bytes, no less error) are never on it.
    /// </summary>
    public static List<int> LowerHull(IReadOnlyList<KnapsackOption> options)
    {
        var order = Enumerable.Range(0, options.Count).OrderBy(k => options[k].Bytes).ThenBy(k => options[k].Error).ToList();
        // Pareto: strictly less error for strictly more bytes.
        var pareto = new List<int>();
        foreach (int k in order)
        {
            if (pareto.Count > 0 && options[pareto[^1]].Bytes == options[k].Bytes) continue;
            if (pareto.Count > 0 && options[k].Error >= options[pareto[^1]].Error) continue;
            pareto.Add(k);
        }
        var hull = new List<int>();
        foreach (int k in pareto)
        {
            while (hull.Count >= 2)
            {
                var a = options[hull[^2]]; var b = options[hull[^1]]; var c = options[k];
                // b is above the segment a-c (or on it): drop it.
                double cross = (b.Bytes - a.Bytes) * (double)(c.Error - a.Error) - (b.Error - a.Error) * (double)(c.Bytes - a.Bytes);
                if (cross <= 0) hull.RemoveAt(hull.Count - 1); else break;
            }
            hull.Add(k);
        }
        return hull;
    }

    /// <summary>
    /// The exact optimum by dynamic programming over Pareto fronts of partial sums, or null when the fronts would
    /// exceed <see cref="MaxExactStates"/> in total.
    /// </summary>
    public static Solution? Exact(IReadOnlyList<IReadOnlyList<KnapsackOption>> items, long budget, int maxStates = MaxExactStates)
    {
        int n = items.Count;
        // Per item, its Pareto options only (others are never optimal).
        var opts = new List<int>[n];
        for (int i = 0; i < n; i++)
        {
            var order = Enumerable.Range(0, items[i].Count).OrderBy(k => items[i][k].Bytes).ThenBy(k => items[i][k].Error).ToList();
            var p = new List<int>();
            foreach (int k in order)
            {
                if (p.Count > 0 && (items[i][p[^1]].Bytes == items[i][k].Bytes || items[i][k].Error >= items[i][p[^1]].Error)) continue;
                p.Add(k);
            }
            opts[i] = p;
        }
        // Bytes still needed by the items after i (their smallest options), so states that cannot finish are dropped.
        var tailMin = new long[n + 1];
        for (int i = n - 1; i >= 0; i--) tailMin[i] = tailMin[i + 1] + items[i][opts[i][0]].Bytes;

        var layers = new List<(long Bytes, double Error, int Parent, int Option)[]>(n);
        var front = new (long Bytes, double Error, int Parent, int Option)[] { (0, 0, -1, -1) };
        long total = 0;
        for (int i = 0; i < n; i++)
        {
            var next = new List<(long Bytes, double Error, int Parent, int Option)>(front.Length * opts[i].Count);
            long limit = budget - tailMin[i + 1];
            for (int s = 0; s < front.Length; s++)
                foreach (int k in opts[i])
                {
                    long b = front[s].Bytes + items[i][k].Bytes;
                    if (b <= limit) next.Add((b, front[s].Error + items[i][k].Error, s, k));
                }
            next.Sort((a, b) => a.Bytes != b.Bytes ? a.Bytes.CompareTo(b.Bytes) : a.Error.CompareTo(b.Error));
            var pruned = new List<(long Bytes, double Error, int Parent, int Option)>();
            foreach (var st in next)
                if (pruned.Count == 0 || st.Error < pruned[^1].Error) pruned.Add(st);
            total += pruned.Count;
            if (total > maxStates) return null;
            layers.Add(front);
            front = pruned.ToArray();
        }
        if (front.Length == 0) return null;
        // The least error is the last state of the front (errors decrease with bytes along it).
        int at = front.Length - 1;
        var result = front[at];
        var choice = new int[n];
        var state = result;
        for (int i = n - 1; i >= 0; i--)
        {
            choice[i] = state.Option;
            if (i > 0) state = layers[i][state.Parent];
        }
        return new Solution(choice, result.Bytes, result.Error, true);
    }
}
