using BenchmarkDotNet.Running;

namespace Squeeze.Bench;

/// <summary>
/// <c>dotnet run -c Release --project bench/Squeeze.Bench -- quantize [TYPE ...]</c>: side-by-side quantize throughput
/// against ggml (a Markdown table); <c>speed</c>: prompt and generation tokens per second beside llama.cpp; <c>versus -m FILE</c>:
/// llama-bench's pp512 and tg128 for Squeeze and llama.cpp on the same file, timed by the code behind <c>squeeze bench</c>; anything else goes to BenchmarkDotNet's switcher (e.g. <c>--filter '*'</c>).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quantize") return QuantizeThroughput.Run(args[1..]);
        if (args.Length > 0 && args[0] == "speed") return InferenceSpeed.Run(args[1..]);
        if (args.Length > 0 && args[0] == "versus") return SideBySide.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
