using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Squeeze.Oracle;

/// <summary>
/// Captures llama.cpp's log (<c>llama_log_set</c>) while an action runs, e.g. to read <c>llama_model_quantize</c>'s
/// dry-run lines. The log is process-wide: callers must not run other llama.cpp work at the same time.
/// </summary>
public static unsafe class LlamaLog
{
    private static readonly Lock Gate = new();
    private static StringBuilder? _sink;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void Callback(int level, byte* text, void* user)
    {
        var s = Marshal.PtrToStringUTF8((nint)text);
        lock (Gate) _sink?.Append(s);
    }

    /// <summary>Runs <paramref name="action"/> and returns what llama.cpp logged meanwhile.</summary>
    public static string Capture(Action action)
    {
        OracleLibrary.EnsureLoaded();
        lock (Gate) _sink = new StringBuilder();
        Native.llama_log_set((nint)(delegate* unmanaged[Cdecl]<int, byte*, void*, void>)&Callback, 0);
        try
        {
            action();
        }
        finally
        {
            Native.llama_log_set(0, 0);
        }
        lock (Gate)
        {
            var text = _sink!.ToString();
            _sink = null;
            return text;
        }
    }
}
