namespace Squeeze.Tokenizers;

/// <summary>
/// The order in which libstdc++'s <c>std::unordered_map&lt;std::string, int&gt;</c> iterates keys inserted one by one.
/// llama.cpp walks its token-to-id map this way when it picks end-of-turn and fill-in-the-middle tokens by text, so
/// when a vocabulary has several candidates for one role, this order decides which one llama.cpp takes.
/// It follows libstdc++: <c>std::hash&lt;std::string&gt;</c> (<c>_Hash_bytes</c>, 64-bit, seed 0xc70f6907), prime
/// bucket counts that grow when the element count passes the bucket count, a new node going to the front of its
/// bucket (or of the whole list when its bucket is empty), and rehashes that re-insert the list in order.
/// </summary>
internal static class StdUnorderedMapOrder
{
    /// <summary>The bucket counts libstdc++'s prime rehash policy steps through (max load factor 1), as printed by
    /// <c>bucket_count()</c> while inserting; the first applies at the first insertion.</summary>
    private static readonly long[] BucketCounts =
    [
        13, 29, 59, 127, 257, 541, 1109, 2357, 5087, 10273, 20753, 42043, 85229, 172933, 351061, 712697, 1447153,
        2938679, 5967347,
    ];

    /// <summary>Insertion indices of <paramref name="keys"/> in iteration order.</summary>
    public static int[] Order(IReadOnlyList<byte[]> keys)
    {
        int n = keys.Count;
        if (n == 0) return [];
        var hash = new ulong[n];
        for (int i = 0; i < n; i++) hash[i] = HashBytes(keys[i]);

        // A singly linked list through next[] starting at head; bucket[b] holds the node *before* the bucket's first
        // node (-2 stands for the list head sentinel "before begin"), or -1 for an empty bucket.
        const int BeforeBegin = -2, None = -1;
        var next = new int[n];
        int head = None;
        long[] bucketCounts = BucketCounts;
        int level = 0;
        long count = bucketCounts[0];
        var bucket = NewBuckets(count);
        for (int i = 0; i < n; i++)
        {
            if (i + 1 > count || i == 0)
            {
                if (i > 0)
                {
                    if (++level >= bucketCounts.Length) throw new NotSupportedException("vocabulary too large to order");
                    count = bucketCounts[level];
                }
                // Rehash: walk the list in order and re-insert.
                bucket = NewBuckets(count);
                int p = head;
                head = None;
                long beginBucket = 0;
                while (p != None)
                {
                    int after = next[p];
                    long b = (long)(hash[p] % (ulong)count);
                    if (bucket[b] == None)
                    {
                        next[p] = head;
                        head = p;
                        bucket[b] = BeforeBegin;
                        if (next[p] != None) bucket[beginBucket] = p;
                        beginBucket = b;
                    }
                    else
                    {
                        int before = bucket[b];
                        next[p] = before == BeforeBegin ? head : next[before];
                        if (before == BeforeBegin) head = p; else next[before] = p;
                    }
                    p = after;
                }
            }
            long bi = (long)(hash[i] % (ulong)count);
            if (bucket[bi] != None)
            {
                int before = bucket[bi];
                next[i] = before == BeforeBegin ? head : next[before];
                if (before == BeforeBegin) head = i; else next[before] = i;
            }
            else
            {
                next[i] = head;
                head = i;
                if (next[i] != None) bucket[(long)(hash[next[i]] % (ulong)count)] = i;
                bucket[bi] = BeforeBegin;
            }
        }

        var order = new int[n];
        int k = 0;
        for (int p = head; p != None; p = next[p]) order[k++] = p;
        return order;
    }

    private static int[] NewBuckets(long count)
    {
        var b = new int[count];
        Array.Fill(b, -1);
        return b;
    }

    /// <summary>libstdc++'s <c>std::_Hash_bytes</c> for 64-bit <c>size_t</c> (a MurmurHash2 variant) with
    /// <c>std::hash&lt;std::string&gt;</c>'s seed.</summary>
    public static ulong HashBytes(ReadOnlySpan<byte> data, ulong seed = 0xc70f6907UL)
    {
        const ulong mul = (0xc6a4a793UL << 32) + 0x5bd1e995UL;
        static ulong ShiftMix(ulong v) => v ^ (v >> 47);
        int aligned = data.Length & ~7;
        ulong hash = seed ^ ((ulong)data.Length * mul);
        for (int p = 0; p < aligned; p += 8)
        {
            ulong d = ShiftMix(BitConverter.ToUInt64(data.Slice(p, 8)) * mul) * mul;
            hash ^= d;
            hash *= mul;
        }
        if ((data.Length & 7) != 0)
        {
            ulong d = 0;
            for (int i = data.Length - 1; i >= aligned; i--) d = (d << 8) + data[i];
            hash ^= d;
            hash *= mul;
        }
        hash = ShiftMix(hash) * mul;
        return ShiftMix(hash);
    }
}
