using Squeeze.Pipeline;
using Xunit;

namespace Squeeze.Tests.Pipeline;

public sealed class PipelineSpecTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("squeeze-spec-").FullName;

    public PipelineSpecTests()
    {
        File.WriteAllText(Path.Combine(_dir, "model.gguf"), "x");
        File.WriteAllText(Path.Combine(_dir, "calib.txt"), "x");
        File.WriteAllText(Path.Combine(_dir, "wiki.txt"), "x");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Valid = """
        source: model.gguf
        output: out
        calibration: [calib.txt]
        imatrix: { context: 128, chunks: 4 }
        evaluation:
          text: wiki.txt
          context: 128
          bench: { prompt: 64, generate: 16, repetitions: 2 }
        candidates:
          - type: Q8_0
          - name: q4-attn
            type: Q4_K_M
            rules: ['\.([0-9]|1[01257])\.attn_k=q5_k']
          - { type: Q4_0, imatrix: false, pure: true }
        """;

    private PipelineSpec Load(string text, string name = "p.yaml")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return PipelineSpec.Load(path);
    }

    [Fact]
    public void Reads_yaml_with_defaults_and_resolves_paths_against_the_file()
    {
        var spec = Load(Valid);
        Assert.Equal(Path.Combine(_dir, "model.gguf"), spec.Resolve(spec.Source));
        Assert.Equal(128, spec.Imatrix.Context);
        Assert.Equal(4, spec.Imatrix.Chunks);
        Assert.Equal(2, spec.Evaluation.Bench!.Repetitions);
        Assert.Equal(["Q8_0", "q4-attn", "Q4_0"], spec.Candidates.Select(c => c.Name));
        Assert.Equal(@"\.([0-9]|1[01257])\.attn_k=q5_k", spec.Candidates[1].Rules[0]);
        Assert.False(spec.Candidates[2].Imatrix);
        Assert.True(spec.Candidates[2].Pure);
        Assert.Equal("f16", spec.BaseType);
    }

    [Fact]
    public void Reads_json()
    {
        var spec = Load("""{"source": "model.gguf", "calibration": ["calib.txt"], "evaluation": {"text": "wiki.txt"}, "candidates": [{"type": "Q5_K_M"}]}""", "p.json");
        Assert.Equal("Q5_K_M", spec.Candidates.Single().Name);
    }

    [Theory]
    [InlineData("source: missing.gguf\nevaluation: {text: wiki.txt}\ncandidates: [{type: Q8_0, imatrix: false}]", "source 'missing.gguf' does not exist")]
    [InlineData("evaluation: {text: wiki.txt}\ncandidates: [{type: Q8_0}]", "'source' is required")]
    [InlineData("source: model.gguf\nevaluation: {text: wiki.txt}\ncandidates: []", "'candidates' is empty")]
    [InlineData("source: model.gguf\nevaluation: {text: wiki.txt}\ncandidates: [{type: Q8_0}]", "names no text")]
    [InlineData("source: model.gguf\ncalibration: [nope.txt]\nevaluation: {text: wiki.txt}\ncandidates: [{type: Q8_0}]", "calibration file 'nope.txt' does not exist")]
    [InlineData("source: model.gguf\ncandidates: [{type: Q8_0, imatrix: false}]", "evaluation.text is required")]
    [InlineData("source: model.gguf\nevaluation: {text: wiki.txt}\ncandidates: [{name: a, imatrix: false}]", "'type' is required")]
    [InlineData("source: model.gguf\nevaluation: {text: wiki.txt}\ncandidates: [{type: Q8_0, imatrix: false}, {type: q8_0, imatrix: false}]", "two candidates are named")]
    [InlineData("source: model.gguf\nevaluation: {text: wiki.txt}\ncandidates: [{type: Q8_0, name: ../x, imatrix: false}]", "the name must be")]
    [InlineData("source: model.gguf\nevaluation: {text: wiki.txt}\ncandidates: [{type: Q8_0, imatrix: false, rules: [attn_k]}]", "is not PATTERN=TYPE")]
    [InlineData("source: model.gguf\nbase_type: q4_0\nevaluation: {text: wiki.txt}\ncandidates: [{type: Q8_0, imatrix: false}]", "base_type must be")]
    [InlineData("source: model.gguf\nevaluation: {text: wiki.txt, bench: {repetitions: 0}}\ncandidates: [{type: Q8_0, imatrix: false}]", "repetitions must be at least 1")]
    [InlineData("source: model.gguf\nevaluation: {text: wiki.txt}\ncandidates: [{type: Q8_0, imatrix: false}]\nbogus_key: 1", "line 4")]
    [InlineData("source: [unclosed", "line")]
    [InlineData("", "empty")]
    public void Refuses_a_bad_file_with_one_clear_message(string text, string expected)
    {
        var e = Assert.Throws<PipelineFormatException>(() => Load(text));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
