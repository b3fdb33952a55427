using Squeeze.Conversion;
using Squeeze.Gguf;
using Xunit;

namespace Squeeze.Tests.Conversion;

public sealed class ConverterTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("squeeze-convert-auto-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Auto_takes_the_first_16_bit_matrix_and_passes_over_f32_ones()
    {
        string model = Path.Combine(_root, "m");
        HfCheckpoints.Write(model, new HfCheckpoints.Spec("Qwen3ForCausalLM", Hidden: 32, Heads: 2, KvHeads: 1, HeadDim: 16, FeedForward: 32,
            Layers: 1, Shards: 1, DType: "BF16"), TestData.Require("tokenizers/qwen3"));
        // "model-0.safetensors" sorts before "model.safetensors": its F32 matrix is seen first and passed over.
        HfCheckpoints.WriteSafetensors(Path.Combine(model, "model-0.safetensors"), [("x.weight", "F32", [2L, 2], new byte[16])]);
        string output = Path.Combine(_root, "vocab.gguf");
        var summary = HfConverter.Convert(model, output, new ConvertOptions { VocabOnly = true }, cancellation: TestContext.Current.CancellationToken);
        Assert.Equal(32u, summary.FileType);
        Assert.Empty(summary.Tensors);
        using var f = GgufFile.Open(output);
        Assert.Equal(32u, f[GgufKeys.General.FileType].Value);
        Assert.Null(f.Find(GgufKeys.General.SizeLabel)); // no tensors, no size label
        Assert.Equal("qwen2", f[GgufKeys.Tokenizer.Pre].AsString());
    }
}
