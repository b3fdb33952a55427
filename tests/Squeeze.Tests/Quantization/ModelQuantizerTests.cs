using Squeeze.Gguf;
using Squeeze.Imatrix;
using Squeeze.Quantization;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Quantization;

public sealed class ModelQuantizerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-quantize-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Model(SyntheticModels.Spec spec, Action<string, float[]>? tamper = null)
    {
        var path = Path.Combine(_dir, $"{spec}.gguf");
        SyntheticModels.Write(path, spec, seed: 5, tamper);
        return path;
    }

    private static QuantizeSummary Quantize(string input, string output, QuantizeTarget target, QuantizeOptions options) =>
        ModelQuantizer.QuantizePure(input, output, target, options, cancellation: TestContext.Current.CancellationToken);

    private static readonly SyntheticModels.Spec Small = SyntheticModels.Llama with { NFf = 256, NVocab = 64 };

    /// <summary>The first of a few 32-block types Squeeze has kernels for, or a skip.</summary>
    private static GgmlType AnyKernelType()
    {
        foreach (var t in new[] { GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.F16, GgmlType.Q4_K, GgmlType.Q6_K })
            if (QuantKernels.Find(t) is not null) return t;
        Assert.Skip("no quantization kernel is registered yet");
        return default;
    }

    [Fact]
    public void Copies_f32_to_f32_with_llama_cpps_metadata_and_order()
    {
        var input = Model(Small);
        var output = Path.Combine(_dir, "out.gguf");
        var summary = Quantize(input, output, LlamaFileTypes.Parse("F32"), new QuantizeOptions { Threads = 2 });

        using var src = GgufFile.Open(input);
        using var dst = GgufFile.Open(output);
        Assert.Equal(3u, dst.Version);
        // Keys keep their order except the two llama.cpp sets, which gguf moves to the end.
        var srcKeys = src.Metadata.Select(kv => kv.Key).Where(k => k != GgufKeys.General.FileType).ToList();
        Assert.Equal([.. srcKeys, GgufKeys.General.QuantizationVersion, GgufKeys.General.FileType], dst.Metadata.Select(kv => kv.Key));
        Assert.Equal(GgufValue.UInt32(2), dst[GgufKeys.General.QuantizationVersion]);
        Assert.Equal(GgufValue.UInt32(0), dst[GgufKeys.General.FileType]);
        Assert.Equal(QuantizationPlan.LlamaOrder(src.Tensors).Select(t => t.Name), dst.Tensors.Select(t => t.Name));
        foreach (var t in dst.Tensors)
            Assert.True(src.GetTensorBytes(src.FindTensor(t.Name)!).SequenceEqual(dst.GetTensorBytes(t)), t.Name);
        Assert.Equal(src.Tensors.Count, summary.Tensors.Count);
        Assert.Equal(32.0, summary.BitsPerWeight);
        Assert.Equal(new FileInfo(output).Length, summary.OutputFileBytes);
    }

    [Fact]
    public void Writes_the_imatrix_keys_as_llama_quantize()
    {
        var input = Model(Small);
        var output = Path.Combine(_dir, "out.gguf");
        var im = ImportanceMatrix.FromWeights(new Dictionary<string, float[]> { ["blk.0.attn_q.weight"] = new float[256] },
            new string('x', 140), ["calibration.txt"], chunkCount: 7);
        Quantize(input, output, LlamaFileTypes.Parse("F32"), new QuantizeOptions { Imatrix = im });
        using var dst = GgufFile.Open(output);
        Assert.Equal([GgufKeys.General.QuantizationVersion, GgufKeys.General.FileType, GgufKeys.Quantize.ImatrixFile,
            GgufKeys.Quantize.ImatrixDataset, GgufKeys.Quantize.ImatrixEntriesCount, GgufKeys.Quantize.ImatrixChunksCount],
            dst.Metadata.Select(kv => kv.Key).TakeLast(6));
        Assert.Equal(new string('x', 127), dst[GgufKeys.Quantize.ImatrixFile].AsString()); // llama-quantize's char[128]
        Assert.Equal("calibration.txt", dst[GgufKeys.Quantize.ImatrixDataset].AsString());
        Assert.Equal(GgufValue.UInt32(1), dst[GgufKeys.Quantize.ImatrixEntriesCount]);
        Assert.Equal(GgufValue.UInt32(7), dst[GgufKeys.Quantize.ImatrixChunksCount]);
    }

    [Fact]
    public void Output_does_not_depend_on_the_thread_count()
    {
        var type = AnyKernelType();
        var input = Model(SyntheticModels.Llama with { WeightType = GgmlType.F16 });
        var target = new QuantizeTarget(LlamaFileTypes.FileTypeFor(type)!.Value, type, type.Name(), true);
        string one = Path.Combine(_dir, "1.gguf"), three = Path.Combine(_dir, "3.gguf");
        Quantize(input, one, target, new QuantizeOptions { Threads = 1 });
        Quantize(input, three, target, new QuantizeOptions { Threads = 3 });
        Assert.True(File.ReadAllBytes(one).AsSpan().SequenceEqual(File.ReadAllBytes(three)));
    }

    [Fact]
    public void Reports_progress_up_to_every_element()
    {
        var input = Model(Small);
        var reports = new List<QuantizeProgress>();
        ModelQuantizer.QuantizePure(input, Path.Combine(_dir, "o.gguf"), LlamaFileTypes.Parse("F32"), new QuantizeOptions(),
            new Collect(reports), TestContext.Current.CancellationToken);
        Assert.NotEmpty(reports);
        Assert.Equal(reports[^1].ElementsTotal, reports[^1].ElementsDone);
        for (int i = 1; i < reports.Count; i++) Assert.True(reports[i].ElementsDone >= reports[i - 1].ElementsDone);
        Assert.Equal(reports[^1].TensorCount - 1, reports[^1].TensorIndex);
    }

    private sealed class Collect(List<QuantizeProgress> into) : IProgress<QuantizeProgress>
    {
        public void Report(QuantizeProgress value) => into.Add(value);
    }

    [Fact]
    public void Refuses_nan_in_a_copied_tensor_naming_tensor_and_row()
    {
        var input = Model(Small, (name, data) => { if (name == "blk.1.ffn_up.weight") data[3 * 256 + 17] = float.NaN; });
        var output = Path.Combine(_dir, "out.gguf");
        var e = Assert.Throws<QuantizationException>(() =>
            Quantize(input, output, LlamaFileTypes.Parse("F32"), new QuantizeOptions()));
        Assert.Equal("blk.1.ffn_up.weight", e.Tensor);
        Assert.Equal(3, e.Row);
        Assert.Contains("row 3", e.Message);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void Refuses_inf_in_a_quantized_tensor_naming_tensor_and_row()
    {
        var type = AnyKernelType();
        var input = Model(Small with { WeightType = GgmlType.F16 }, (name, data) => { if (name == "blk.0.attn_v.weight") data[100 * 256 + 5] = float.PositiveInfinity; });
        var output = Path.Combine(_dir, "out.gguf");
        var target = new QuantizeTarget(LlamaFileTypes.FileTypeFor(type)!.Value, type, type.Name(), true);
        var e = Assert.Throws<QuantizationException>(() =>
            Quantize(input, output, target, new QuantizeOptions { Threads = 2 }));
        Assert.Equal("blk.0.attn_v.weight", e.Tensor);
        Assert.Equal(100, e.Row);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Refuses_an_imatrix_entry_that_does_not_fit_its_tensor()
    {
        var input = Model(Small);
        var im = ImportanceMatrix.FromWeights(new Dictionary<string, float[]> { ["blk.0.ffn_down.weight"] = new float[100] }, "im.gguf");
        var e = Assert.Throws<QuantizationException>(() =>
            Quantize(input, Path.Combine(_dir, "o.gguf"), LlamaFileTypes.Parse("Q8_0"), new QuantizeOptions { Imatrix = im }));
        Assert.Equal("blk.0.ffn_down.weight", e.Tensor);
        Assert.Contains("100", e.Message);
    }

    [Fact]
    public void Refuses_low_bit_i_quants_without_an_imatrix()
    {
        var input = Model(Small);
        var e = Assert.Throws<QuantizationException>(() =>
            Quantize(input, Path.Combine(_dir, "o.gguf"), LlamaFileTypes.Parse("IQ2_XXS"), new QuantizeOptions()));
        Assert.StartsWith("blk.0.", e.Tensor);
        Assert.Contains("--imatrix", e.Message);
    }

    [Fact]
    public void Plans_pure_types_with_fallback_and_keeps_norms()
    {
        using var file = GgufFile.Open(Model(SyntheticModels.Llama));
        var plan = QuantizationPlan.Pure(file, LlamaFileTypes.Parse("Q4_K_M"));
        var byName = plan.Tensors.ToDictionary(t => t.Tensor.Name);
        Assert.Equal(GgmlType.Q4_K, byName["output.weight"].TargetType); // --pure: no Q6_K output
        Assert.Equal(GgmlType.Q4_K, byName["token_embd.weight"].TargetType);
        Assert.Equal(GgmlType.Q5_0, byName["blk.0.ffn_down.weight"].TargetType); // rows of 640
        Assert.True(byName["blk.0.ffn_down.weight"].FellBack);
        Assert.Equal(GgmlType.F32, byName["blk.0.attn_norm.weight"].TargetType);
        Assert.False(byName["blk.0.attn_norm.weight"].Converts);
        Assert.Equal(2, plan.FallbackCount);
        Assert.Equal(LlamaFileType.Q4_K_M, plan.FileType);
    }

    [Fact]
    public void Output_and_embedding_types_apply_first_without_fallback()
    {
        using var file = GgufFile.Open(Model(SyntheticModels.Llama));
        var plan = QuantizationPlan.Pure(file, LlamaFileTypes.Parse("Q4_K_M"),
            new PureOptions { OutputTensorType = GgmlType.Q8_0, TokenEmbeddingType = GgmlType.Q6_K });
        var byName = plan.Tensors.ToDictionary(t => t.Tensor.Name);
        Assert.Equal(GgmlType.Q8_0, byName["output.weight"].TargetType);
        Assert.Equal(GgmlType.Q6_K, byName["token_embd.weight"].TargetType);
        Assert.Equal(GgmlType.Q4_K, byName["blk.0.attn_q.weight"].TargetType);

        plan = QuantizationPlan.Pure(file, LlamaFileTypes.Parse("Q4_K_M"), new PureOptions { QuantizeOutput = false, OutputTensorType = GgmlType.Q8_0 });
        Assert.False(plan.Tensors.Single(t => t.Tensor.Name == "output.weight").Converts);

        using var narrow = GgufFile.Open(Model(Small with { NEmbd = 96, NHead = 1, HeadDim = 96 }));
        var e = Assert.Throws<QuantizationException>(() => QuantizationPlan.Pure(narrow, LlamaFileTypes.Parse("Q8_0"), new PureOptions { TokenEmbeddingType = GgmlType.Q6_K }));
        Assert.Equal("token_embd.weight", e.Tensor);
    }

    [Fact]
    public void F16_file_type_has_no_fallback()
    {
        using var file = GgufFile.Open(Model(SyntheticModels.Llama with { NFf = 200 }));
        var plan = QuantizationPlan.Pure(file, LlamaFileTypes.Parse("F16"));
        Assert.All(plan.Tensors.Where(t => t.Tensor.Shape.Count == 2), t => Assert.Equal(GgmlType.F16, t.TargetType));
    }
}
