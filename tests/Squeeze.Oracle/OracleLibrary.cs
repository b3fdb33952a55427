using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Squeeze.Oracle;

/// <summary>
/// Loads llama.cpp's native libraries from LLamaSharp.Backend.Cpu (ggml 815a2a591): one CPU-variant
/// folder per process (avx512 where the CPU has it, else avx2, avx, noavx), resolved for every
/// <c>DllImport</c> of this assembly. The oracle is for tests and benchmarks only.
/// </summary>
public static partial class OracleLibrary
{
    public const string GgmlBase = "ggml-base";
    public const string GgmlCpu = "ggml-cpu";
    public const string Llama = "llama";

    private static readonly Lazy<string> Folder = new(FindFolder);
    private static int _initialized;

    /// <summary>The variant folder in use, e.g. <c>runtimes/linux-x64/native/avx512</c> under the output folder.</summary>
    public static string NativeFolder => Folder.Value;

    /// <summary>The CPU variant chosen (<c>avx512</c>, <c>avx2</c>, <c>avx</c> or <c>noavx</c>).</summary>
    public static string Variant =>
        Avx512F.IsSupported && Avx512BW.IsSupported && Avx512Vbmi.IsSupported ? "avx512"
        : Avx2.IsSupported && Fma.IsSupported ? "avx2"
        : Avx.IsSupported ? "avx"
        : "noavx";

    /// <summary>Whether the oracle's files are present beside the running assembly.</summary>
    public static bool IsAvailable => File.Exists(Path.Combine(Folder.Value, "libggml-base.so"));

    /// <summary>Installs the resolver and initialises ggml's CPU tables once. Safe to call many times.</summary>
    public static void EnsureLoaded()
    {
        if (Interlocked.Exchange(ref _initialized, 1) == 1) return;
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("the oracle tests use the linux-x64 native libraries");
        // A GGML_ASSERT would print a backtrace through gdb; keep aborts short. Native getenv reads the C environment.
        setenv("GGML_NO_BACKTRACE", "1", 1);
        NativeLibrary.SetDllImportResolver(typeof(OracleLibrary).Assembly, Resolve);
        Native.ggml_cpu_init();
        Native.llama_log_set(0, 0);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        string file = name switch
        {
            GgmlBase => "libggml-base.so",
            GgmlCpu => "libggml-cpu.so",
            Llama => "libllama.so",
            _ => "",
        };
        if (file.Length == 0) return 0;
        var full = Path.Combine(Folder.Value, file);
        if (!File.Exists(full))
            throw new DllNotFoundException($"oracle library {full} is missing: build with RuntimeIdentifier linux-x64 and LLamaSharp.Backend.Cpu");
        return NativeLibrary.Load(full);
    }

    private static string FindFolder() =>
        Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", Variant);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
