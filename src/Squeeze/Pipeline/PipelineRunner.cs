using System.Diagnostics;
using System.Globalization;

namespace Squeeze.Pipeline;

/// <summary>
/// One step of a pipeline: what it reads (files, by role), what it writes (paths relative to the output folder),
/// the settings that change its result, and the work itself.
/// </summary>
/// <param name="Name">A unique name, also the name of its cache record (e.g. <c>quantize-Q4_K_M</c>).</param>
/// <param name="Title">What the progress display says.</param>
/// <param name="Inputs">Role -> absolute path of each input file or folder (hashed by content for the cache key).</param>
/// <param name="Outputs">The files the step writes, relative to the output folder.</param>
/// <param name="Settings">Everything else that changes the outputs (serialized into the cache key).</param>
/// <param name="Run">The work; reports its progress (0..1) and honours cancellation.</param>
public sealed record PipelineStep(
    string Name,
    string Title,
    IReadOnlyDictionary<string, string> Inputs,
    IReadOnlyList<string> Outputs,
    object? Settings,
    Action<StepContext> Run);

/// <summary>What a running step gets: where to write, how to report progress and log, and cancellation.</summary>
public sealed class StepContext(string outputFolder, Action<double> progress, Action<string> log, CancellationToken cancellation)
{
    /// <summary>The pipeline's output folder.</summary>
    public string OutputFolder { get; } = outputFolder;

    /// <summary>The absolute path of an output named relative to the output folder.</summary>
    public string PathOf(string relative) => Path.Combine(OutputFolder, relative);

    public CancellationToken Cancellation { get; } = cancellation;

    /// <summary>Reports the step's progress, 0..1.</summary>
    public void Progress(double fraction) => progress(Math.Clamp(fraction, 0, 1));

    /// <summary>Writes a line to the pipeline's log file.</summary>
    public void Log(string line) => log(line);
}

/// <summary>What happened to a step.</summary>
public enum StepState { Pending, Cached, Running, Done, Failed }

/// <summary>A step's change of state or progress, for progress displays.</summary>
public readonly record struct StepEvent(int Index, int Count, PipelineStep Step, StepState State, double Progress);

/// <summary>The outcome of a run: which steps ran and which came from the cache.</summary>
public sealed record PipelineResult(IReadOnlyList<string> Ran, IReadOnlyList<string> Cached, TimeSpan Elapsed);

/// <summary>
/// Runs steps in order, skipping every step whose cache key (settings + input contents) and outputs are unchanged.
/// A step's record is written only after it finishes, so a run that is killed resumes at the step it was in.
/// Every step start, finish, skip and failure goes to <c>pipeline.log</c> in the output folder.
/// </summary>
public sealed class PipelineRunner
{
    private readonly string _output;
    private readonly StepCache _cache;
    private readonly string _logPath;
    private readonly Lock _logLock = new();

    public PipelineRunner(string outputFolder)
    {
        _output = Path.GetFullPath(outputFolder);
        Directory.CreateDirectory(_output);
        _cache = new StepCache(_output);
        _logPath = Path.Combine(_output, "pipeline.log");
    }

    public StepCache Cache => _cache;

    /// <summary>Appends a timestamped line to <c>pipeline.log</c>.</summary>
    public void Log(string line)
    {
        var stamped = $"{DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}Z {line}{Environment.NewLine}";
        lock (_logLock) File.AppendAllText(_logPath, stamped);
    }

    /// <summary>
    /// Runs <paramref name="steps"/> in order. A step's inputs are hashed when its turn comes, so a step may read
    /// the outputs of the steps before it.
    /// </summary>
    public PipelineResult Run(IReadOnlyList<PipelineStep> steps, Action<StepEvent>? onEvent = null, CancellationToken cancellation = default)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in steps)
            if (!names.Add(s.Name)) throw new ArgumentException($"two steps are named {s.Name}", nameof(steps));
        var clock = Stopwatch.StartNew();
        var ran = new List<string>();
        var cached = new List<string>();
        Log($"run: {steps.Count} steps");
        for (int i = 0; i < steps.Count; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            var step = steps[i];
            var inputHashes = step.Inputs.Select(p => KeyValuePair.Create(p.Key,
                Directory.Exists(p.Value) ? _cache.HashFolder(p.Value) : _cache.HashFile(p.Value)));
            var key = StepCache.Key(step.Name, step.Settings, inputHashes);
            if (_cache.IsDone(step.Name, key, _output, out _))
            {
                cached.Add(step.Name);
                Log($"{step.Name}: cached ({key[..12]})");
                onEvent?.Invoke(new StepEvent(i, steps.Count, step, StepState.Cached, 1));
                continue;
            }
            Log($"{step.Name}: start ({key[..12]})");
            onEvent?.Invoke(new StepEvent(i, steps.Count, step, StepState.Running, 0));
            var stepClock = Stopwatch.StartNew();
            int index = i;
            var context = new StepContext(_output,
                p => onEvent?.Invoke(new StepEvent(index, steps.Count, step, StepState.Running, p)),
                line => Log($"{step.Name}: {line}"), cancellation);
            try
            {
                step.Run(context);
                cancellation.ThrowIfCancellationRequested();
                _cache.MarkDone(step.Name, key, _output, step.Outputs);
            }
            catch (Exception e)
            {
                Log($"{step.Name}: {(e is OperationCanceledException ? "cancelled" : "failed: " + e.Message.ReplaceLineEndings(" "))}");
                onEvent?.Invoke(new StepEvent(i, steps.Count, step, StepState.Failed, 0));
                throw;
            }
            ran.Add(step.Name);
            Log($"{step.Name}: done in {stepClock.Elapsed.TotalSeconds:F1} s");
            onEvent?.Invoke(new StepEvent(i, steps.Count, step, StepState.Done, 1));
        }
        Log($"run: finished in {clock.Elapsed.TotalSeconds:F1} s ({ran.Count} ran, {cached.Count} cached)");
        return new PipelineResult(ran, cached, clock.Elapsed);
    }
}
