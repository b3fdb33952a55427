using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Quantization;
using Squeeze.Quantization.Planning;
using Squeeze.Quants;
using Squeeze.Tests;
using Xunit;

namespace Squeeze.Oracle.Tests.Quantization;

/// <summary>
/// A planned file against llama.cpp: the plan's <c>--tensor-type-file</c> given to <c>llama_model_quantize</c> (as
/// llama-quantize passes it: patterns lower-cased, first match wins, the plan's file type, the same imatrix) must give
/// the same bytes as Squeeze's quantization of the plan, and llama.cpp must load and run the file.
/// </summary>
public sealed class PlannerOracleTests : IDisposable
{
    private const int Threads = 2;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("squeeze-plan-oracle-");

    public void Dispose() => _dir.Delete(true);

    /// <summary>llama-quantize's <c>parse_tensor_type_file</c>: whitespace-separated <c>PATTERN=TYPE</c> tokens.</summary>
    private static List<(string Pattern, int Type)> ParseTensorTypeFile(string text)
    {
        var list = new List<(string, int)>();
        foreach (var token in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = token.IndexOf('=');
            Assert.True(eq > 0, $"malformed rule '{token}'");
            Assert.True(GgmlTypes.TryParse(token[(eq + 1)..], out var type), $"bad type in '{token}'");
            list.Add((token[..eq], (int)type));
        }
        return list;
    }

    [Theory]
    [InlineData(2.8)]
    [InlineData(4.6)]
    [InlineData(7.0)]
    public void The_tensor_type_file_reproduces_the_planned_file_byte_for_byte(double bpw)
    {
        string model = Path.Combine(_dir.FullName, "llama.gguf");
        SyntheticModels.Write(model, SyntheticModels.Llama, seed: 3);
        var rng = new Random(5);
        var entries = new List<ImatrixFiles.LegacyEntry>();
        using (var f = GgufFile.Open(model))
            foreach (var t in f.Tensors.Where(t => QuantizableTensors.Check(t).Allowed && t.Name != "token_embd.weight"))
                entries.Add(new(t.Name, 4, Enumerable.Range(0, (int)t.Shape[0]).Select(i => (float)(4 * Math.Exp(2 * rng.NextDouble() - 1) * (i % 29 == 0 ? 20 : 1))).ToArray()));
        string imatrixPath = Path.Combine(_dir.FullName, "llama.imatrix.dat");
        File.WriteAllBytes(imatrixPath, ImatrixFiles.LegacyBytes(entries, 4, "synthetic.txt"));
        var im = ImportanceMatrix.Load(imatrixPath);

        string ours = Path.Combine(_dir.FullName, $"plan-{bpw}-squeeze.gguf"), theirs = Path.Combine(_dir.FullName, $"plan-{bpw}-llama.gguf");
        Allocation a;
        using (var f = GgufFile.Open(model))
        {
            var options = new MeasureOptions
            {
                Imatrix = im,
                Threads = Threads,
                SampleElements = 4096,
                CalibrationChunks = [Enumerable.Range(0, 16).Select(i => (i * 37 + 1) % 320).ToArray()],
                // Two probes per tensor suffice here (the test is about the bytes, not the choice); probing all is slower.
                ProbeAll = false,
                // Shared by the three targets: the key covers the model, imatrix and settings, so re-planning reads it.
                CacheDirectory = Path.Combine(Path.GetTempPath(), "squeeze-plan-oracle-cache"),
            };
            a = BitPlanner.Plan(f, PlanTarget.Bpw(bpw), options, cancellation: TestContext.Current.CancellationToken).Allocation;
            ModelQuantizer.Quantize(f, a.Plan, ours, new QuantizeOptions { Imatrix = im, Threads = Threads }, cancellation: TestContext.Current.CancellationToken);
        }
        var types = a.Tensors.Where(t => t.Status == "planned").Select(t => t.Type).Distinct().ToList();
        TestContext.Current.TestOutputHelper?.WriteLine($"{bpw} bpw: {a.BitsPerWeight:0.000} bpw, file type {a.Plan.FileType.Name()}, types {string.Join(", ", types.Select(t => t.Name()))}");
        Assert.True(types.Count >= 2, "a plan of one type tests little");

        var rules = ParseTensorTypeFile(a.TensorTypeFile());
        Assert.True(LlamaQuantize.Run(model, theirs, (int)a.Plan.FileType, pure: false, Threads,
            SimpleImatrix.Weights(im), SimpleImatrix.Overrides(im), tensorTypes: rules), "llama.cpp failed");
        GgufAssert.SameFile(theirs, ours, $"plan at {bpw} bpw");

        using var run = new OracleModel(ours, contextSize: 32, batchSize: 8, threads: Threads);
        var logits = run.Decode([1, 7, 42, 99, 3], startPosition: 0, allLogits: false);
        Assert.True(logits.All(float.IsFinite), "llama.cpp's logits on the planned file are not finite");
    }
}
