using Squeeze.Numerics;
using Xunit;

namespace Squeeze.Tests.Numerics;

/// <summary>The worker pool runs every item once, on several threads, propagates errors and survives nesting and concurrency.</summary>
public class WorkersTests
{
    [Fact]
    public void Default_threads_is_between_one_and_the_processor_count() =>
        Assert.InRange(Workers.DefaultThreads, 1, Environment.ProcessorCount);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(3, 1000)]
    [InlineData(4, 7)]
    public void Each_runs_every_item_exactly_once(int threads, int count)
    {
        for (int round = 0; round < 50; round++)
        {
            var hits = new int[count];
            Workers.Each(count, threads, i => Interlocked.Increment(ref hits[i]));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void For_covers_the_range_with_disjoint_ranges()
    {
        var hits = new int[1003];
        Workers.For(hits.Length, 3, (a, b) => { for (int i = a; i < b; i++) Interlocked.Increment(ref hits[i]); }, minRange: 16);
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void An_exception_in_an_item_reaches_the_caller_and_the_pool_keeps_working()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Workers.Each(100, 2, i => { if (i == 37) throw new InvalidOperationException("item 37"); }));
        Assert.Equal("item 37", e.Message);
        int sum = 0;
        Workers.Each(100, 2, i => Interlocked.Add(ref sum, i));
        Assert.Equal(4950, sum);
    }

    [Fact]
    public void Nested_and_concurrent_jobs_complete()
    {
        long total = 0;
        Parallel.For(0, 4, _ => Workers.Each(8, 2, i => Workers.Each(8, 2, j => Interlocked.Add(ref total, i * 8 + j))));
        Assert.Equal(4L * (64 * 63 / 2), total);
    }
}
