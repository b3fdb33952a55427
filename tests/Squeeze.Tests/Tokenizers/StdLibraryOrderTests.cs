using System.Text;
using Squeeze.Tokenizers;
using Xunit;

namespace Squeeze.Tests.Tokenizers;

/// <summary>
/// The libstdc++ behaviours llama.cpp's vocabulary loading depends on. Expected values were printed by a small C++
/// program built with g++ 12 (libstdc++): <c>std::sort</c> with a length comparator, <c>std::hash&lt;std::string&gt;</c>,
/// and the iteration order of an <c>std::unordered_map&lt;std::string, int&gt;</c>.
/// </summary>
public class StdLibraryOrderTests
{
    [Theory]
    [InlineData(5, 15491559001503705243UL, new[] { 0, 2, 4, 1, 3 })]
    [InlineData(17, 1479036607480320447UL, new[] { 3, 1, 12, 10, 8, 15, 11, 0, 5, 14, 2, 16 })]
    [InlineData(40, 6842995585688198095UL, new[] { 38, 34, 31, 5, 28, 7, 22, 9, 1, 39, 15, 12 })]
    [InlineData(300, 8272524723087737275UL, new[] { 157, 234, 231, 230, 36, 228, 226, 39, 223, 41, 128, 135 })]
    [InlineData(2000, 6465549497424233195UL, new[] { 1240, 1184, 1190, 1191, 1202, 1205, 1207, 309, 1215, 1217, 1220, 1228 })]
    public void Sort_orders_ties_as_libstdcxx_std_sort(int n, ulong fnv, int[] first)
    {
        var len = new int[n];
        var ids = new int[n];
        uint x = 12345u + (uint)n;
        for (int i = 0; i < n; i++)
        {
            x = unchecked(x * 1103515245u + 12345u);
            len[i] = 1 + (int)((x >> 16) % 6);
            ids[i] = i;
        }
        StdSort.Sort(ids, (a, b) => len[a] > len[b]);
        ulong h = 1469598103934665603UL;
        foreach (int id in ids) h = unchecked((h ^ (ulong)id) * 1099511628211UL);
        Assert.Equal(first, ids.Take(first.Length));
        Assert.Equal(fnv, h);
    }

    [Theory]
    [InlineData("", 6142509188972423790UL)]
    [InlineData("a", 4993892634952068459UL)]
    [InlineData("hello world!", 6594337730806245023UL)]
    [InlineData("<|im_end|>", 2038672007907099973UL)]
    public void Hash_equals_std_hash_of_string(string s, ulong expected) =>
        Assert.Equal(expected, StdUnorderedMapOrder.HashBytes(Encoding.UTF8.GetBytes(s)));

    [Fact]
    public void Unordered_map_iterates_as_libstdcxx()
    {
        var keys = "abcdefghijklmnopqrst".Select(c => new[] { (byte)c }).ToList();
        Assert.Equal([19, 18, 17, 16, 14, 0, 1, 15, 7, 13, 3, 10, 2, 8, 5, 6, 4, 9, 11, 12], StdUnorderedMapOrder.Order(keys));
    }

    [Fact]
    public void Unordered_map_iterates_as_libstdcxx_through_many_rehashes()
    {
        var keys = Enumerable.Range(0, 100000).Select(i => Encoding.ASCII.GetBytes($"{(long)i * 7919 % 100003}t")).ToList();
        var order = StdUnorderedMapOrder.Order(keys);
        Assert.Equal([99999, 99998, 99997, 99996, 99995, 99992, 99991, 99990], order.Take(8));
        ulong h = 1469598103934665603UL;
        foreach (int id in order) h = unchecked((h ^ (ulong)id) * 1099511628211UL);
        Assert.Equal(17965643542896776473UL, h);
    }
}
