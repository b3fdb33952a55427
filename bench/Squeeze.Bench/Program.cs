using BenchmarkDotNet.Running;

namespace Squeeze.Bench;

/// <summary>
/// <c>dotnet run -c Release --project bench/Squeeze.Bench -- quantize [TYPE ...]</c>: side-by-side quantize throughput
/// against ggml (a Markdown table); <c>speed</c>: prompt and generation tokens per second beside llama.cpp; <c>versus -m FILE</c>:
/// llama-bench's pp512 and tg128 for Squeeze and llama.cpp on the same file, timed by the code behind <c>squeeze bench</c>;
/// <c>quantize-model [TYPE] [--threads N]</c>: time and peak memory of quantizing a model with Qwen3-8B's layer shapes, beside llama.cpp;
/// <c>tg-profile -m MODEL</c>: CPU time per generated token, the forward pass against its matmuls alone;
/// <c>gemm</c>: one thread's tiled vs vec-dot matmul throughput per type; <c>attention</c>: time in attention (Squeeze, plain, ggml) on a Qwen3-0.6B shape; <c>plan</c>: the planner against llama.cpp's presets at equal size (<see cref="PlanBench"/>); anything else goes to BenchmarkDotNet's switcher (e.g. <c>--filter '*'</c>).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quantize") return QuantizeThroughput.Run(args[1..]);
        if (args.Length > 0 && args[0] == "speed") return InferenceSpeed.Run(args[1..]);
        if (args.Length > 0 && args[0] == "tg-profile") return TgProfile.Run(args[1..]);
        if (args.Length > 0 && args[0] == "gemm") return GemmSpeed.Run(args[1..]);
        if (args.Length > 0 && args[0] == "plan") return PlanBench.Run(args[1..]);
        if (args.Length > 0 && args[0] == "attention") return AttentionSpeed.Run(args[1..]);
        if (args.Length > 0 && args[0] == "versus") return SideBySide.Run(args[1..]);
        if (args.Length > 0 && args[0] == "quantize-model") return QuantizeModel.Run(args[1..]);
        if (args.Length > 0 && args[0] == "quantize-model-child") return QuantizeModel.RunChild(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
