using Squeeze.Evaluation.Tasks;
using Xunit;

namespace Squeeze.Tests.Evaluation.Tasks;

/// <summary>
/// std::mt19937 and the two index mappings against values printed by a C++ program built with g++ 12.2 (libstdc++):
/// <c>std::mt19937 rng(1)</c>, <c>std::uniform_int_distribution&lt;size_t&gt;</c>, and llama-perplexity's
/// <c>int(scale * rng() * size)</c> with the removal of picked indices as its WinoGrande and HellaSwag loops do.
/// </summary>
public class Mt19937Tests
{
    [Fact]
    public void Outputs_equal_std_mt19937_seeded_with_1()
    {
        var rng = new Mt19937(1);
        Assert.Equal([1791095845u, 4282876139u, 3093770124u, 4005303368u, 491263u], Enumerable.Range(0, 5).Select(_ => rng.Next()));
        var r2 = new Mt19937(1);
        for (int i = 0; i < 10000; i++) r2.Next();
        Assert.Equal(2915232614u, r2.Next());
    }

    [Fact]
    public void Uniform_index_equals_libstdcxx_uniform_int_distribution()
    {
        var rng = new Mt19937(1);
        Assert.Equal([4187UL, 10012, 7232, 9361, 1, 1285, 3034, 10025, 1472, 2368, 926, 3978], Enumerable.Range(0, 12).Select(i => rng.UniformIndex((ulong)(10042 - i))));
        // A range of 3 rejects low products below 2^32 mod 3; a range near 2^32 rejects often.
        rng = new Mt19937(1);
        Assert.Equal([1UL, 2, 2, 2, 0, 0, 0, 2, 0, 0, 0, 1], Enumerable.Range(0, 12).Select(_ => rng.UniformIndex(3)));
        rng = new Mt19937(1);
        Assert.Equal([1251065995UL, 2991554425, 2160973468, 2797672084, 384373343, 906997703, 440267677, 277015786, 1189742178, 1036682175, 2009238121, 1190302406],
            Enumerable.Range(0, 12).Select(_ => rng.UniformIndex(3000000001)));
    }

    [Fact]
    public void Task_sampling_equals_llama_perplexity()
    {
        Assert.Equal([41, 99, 71, 92, 0, 13, 30, 98, 15, 24], HellaSwag.SelectTasks(100, 10));
        Assert.Equal([528, 1262, 911, 1178, 0, 161, 381, 1258, 184, 296], WinoGrande.SelectTasks(1267, 10));
        Assert.Equal(WinoGrande.SelectTasks(1267, 10), MultipleChoice.SelectTasks(1267, 10));
        // All tasks, or 0: file order for WinoGrande and multiple choice, still drawn at random for HellaSwag.
        Assert.Equal(Enumerable.Range(0, 5), WinoGrande.SelectTasks(5, 0));
        Assert.Equal(Enumerable.Range(0, 5), MultipleChoice.SelectTasks(5, 9));
        var all = HellaSwag.SelectTasks(5, 400);
        Assert.Equal(Enumerable.Range(0, 5), all.Order());
        Assert.NotEqual(Enumerable.Range(0, 5), all);
    }

    [Fact]
    public void Scaled_index_stays_in_range()
    {
        var rng = new Mt19937(7);
        for (int i = 0; i < 100000; i++) Assert.InRange(rng.ScaledIndex(1000), 0, 999);
    }
}
