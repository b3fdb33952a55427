namespace Squeeze.Tests;

/// <summary>
/// Finds the project's shared test data (<c>../shared/data</c> from the repository root, or the folder named by
/// <c>SQUEEZE_TEST_DATA</c>). A test that needs it calls <see cref="Require"/>: absent data skips the test with the
/// reason, except under <c>CI=true</c>, where absence fails it.
/// </summary>
public static class TestData
{
    private static readonly Lazy<string?> Root = new(Find);

    /// <summary>The data folder, or null when it cannot be found.</summary>
    public static string? Folder => Root.Value;

    /// <summary>The full path of <paramref name="relative"/> inside the data folder (e.g. <c>models/stories260K.gguf</c>).</summary>
    public static string Require(string relative)
    {
        var root = Root.Value;
        var path = root is null ? null : Path.Combine(root, relative);
        if (path is not null && (File.Exists(path) || Directory.Exists(path))) return path;
        var reason = $"test data '{relative}' not found (looked in {root ?? "../shared/data and $SQUEEZE_TEST_DATA"})";
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Xunit.Assert.Fail(reason + "; CI=true requires it");
        Xunit.Assert.Skip(reason);
        return ""; // unreachable: Skip throws
    }

    public static string StoriesModel => Require("models/stories260K.gguf");
    public static string QwenF32Model => Require("models/tiny-qwen3-5M-F32.gguf");
    public static string QwenF16Model => Require("models/tiny-qwen3-5M-F16.gguf");

    /// <summary>Every GGUF file in the data folder.</summary>
    public static IReadOnlyList<string> AllGgufFiles()
    {
        var root = Require(".");
        return Directory.EnumerateFiles(root, "*.gguf", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
    }

    private static string? Find()
    {
        var env = Environment.GetEnvironmentVariable("SQUEEZE_TEST_DATA");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(env) ? Path.GetFullPath(env) : null;
        // Walk up from the test binary to the repository root (the folder with Squeeze.slnx); data is ../shared/data from there.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Squeeze.slnx")))
            {
                var data = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data"));
                return Directory.Exists(data) ? data : null;
            }
        }
        return null;
    }
}
