using Squeeze.Quantization;
using Squeeze.Quants;
using Xunit;

namespace Squeeze.Tests.Quantization;

public class LlamaFileTypeTests
{
    [Theory]
    [InlineData("Q4_K_M", LlamaFileType.Q4_K_M, GgmlType.Q4_K)]
    [InlineData("q4_k_m", LlamaFileType.Q4_K_M, GgmlType.Q4_K)]
    [InlineData("Q4_K", LlamaFileType.Q4_K_M, GgmlType.Q4_K)]
    [InlineData("q3_k", LlamaFileType.Q3_K_M, GgmlType.Q3_K)]
    [InlineData("Q5_K", LlamaFileType.Q5_K_M, GgmlType.Q5_K)]
    [InlineData("Q2_K_S", LlamaFileType.Q2_K_S, GgmlType.Q2_K)]
    [InlineData("IQ3_XS", LlamaFileType.IQ3_XS, GgmlType.IQ3_S)]
    [InlineData("IQ3_M", LlamaFileType.IQ3_M, GgmlType.IQ3_S)]
    [InlineData("iq2_s", LlamaFileType.IQ2_S, GgmlType.IQ2_XS)] // the file type wins over the ggml type of the same name
    [InlineData("IQ2_M", LlamaFileType.IQ2_M, GgmlType.IQ2_S)]
    [InlineData("MXFP4_MOE", LlamaFileType.MXFP4_MOE, GgmlType.MXFP4)]
    [InlineData("f32", LlamaFileType.F32, GgmlType.F32)]
    [InlineData("BF16", LlamaFileType.BF16, GgmlType.BF16)]
    [InlineData("15", LlamaFileType.Q4_K_M, GgmlType.Q4_K)]
    [InlineData("7", LlamaFileType.Q8_0, GgmlType.Q8_0)]
    [InlineData("0", LlamaFileType.F32, GgmlType.F32)]
    public void Parses_file_types_as_llama_quantize(string text, LlamaFileType fileType, GgmlType tensorType)
    {
        var t = LlamaFileTypes.Parse(text);
        Assert.Equal(fileType, t.FileType);
        Assert.Equal(tensorType, t.TensorType);
        Assert.False(t.IsGgmlTypeName);
    }

    [Theory]
    [InlineData("mxfp4", LlamaFileType.MXFP4_MOE, GgmlType.MXFP4)]
    [InlineData("NVFP4", LlamaFileType.NVFP4, GgmlType.NVFP4)]
    public void Accepts_ggml_type_names_for_pure(string text, LlamaFileType fileType, GgmlType tensorType)
    {
        var t = LlamaFileTypes.Parse(text);
        Assert.Equal(fileType, t.FileType);
        Assert.Equal(tensorType, t.TensorType);
        Assert.True(t.IsGgmlTypeName);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Q4_K_X")]
    [InlineData("q8_k")] // an activation format: no file type stands for it
    [InlineData("i32")]
    [InlineData("39")] // NVFP4 by number: llama-quantize does not list it
    [InlineData("4")] // removed
    [InlineData("-1")]
    public void Rejects_what_is_no_file_type(string text)
    {
        Assert.False(LlamaFileTypes.TryParse(text, out _));
        var e = Assert.Throws<FormatException>(() => LlamaFileTypes.Parse(text));
        Assert.Contains("Q4_K_M", e.Message);
    }

    [Fact]
    public void Ids_and_default_types_match_llama_cpp()
    {
        // llama.h at 815a2a591 and llama_ftype_get_default_type, spelled out again so that a slip in the table shows.
        var expected = new (uint Id, string Name, GgmlType? Default)[]
        {
            (0, "F32", GgmlType.F32), (1, "F16", GgmlType.F16), (2, "Q4_0", GgmlType.Q4_0), (3, "Q4_1", GgmlType.Q4_1),
            (7, "Q8_0", GgmlType.Q8_0), (8, "Q5_0", GgmlType.Q5_0), (9, "Q5_1", GgmlType.Q5_1), (10, "Q2_K", GgmlType.Q2_K),
            (11, "Q3_K_S", GgmlType.Q3_K), (12, "Q3_K_M", GgmlType.Q3_K), (13, "Q3_K_L", GgmlType.Q3_K),
            (14, "Q4_K_S", GgmlType.Q4_K), (15, "Q4_K_M", GgmlType.Q4_K), (16, "Q5_K_S", GgmlType.Q5_K), (17, "Q5_K_M", GgmlType.Q5_K),
            (18, "Q6_K", GgmlType.Q6_K), (19, "IQ2_XXS", GgmlType.IQ2_XXS), (20, "IQ2_XS", GgmlType.IQ2_XS), (21, "Q2_K_S", GgmlType.Q2_K),
            (22, "IQ3_XS", GgmlType.IQ3_S), (23, "IQ3_XXS", GgmlType.IQ3_XXS), (24, "IQ1_S", GgmlType.IQ1_S), (25, "IQ4_NL", GgmlType.IQ4_NL),
            (26, "IQ3_S", GgmlType.IQ3_S), (27, "IQ3_M", GgmlType.IQ3_S), (28, "IQ2_S", GgmlType.IQ2_XS), (29, "IQ2_M", GgmlType.IQ2_S),
            (30, "IQ4_XS", GgmlType.IQ4_XS), (31, "IQ1_M", GgmlType.IQ1_M), (32, "BF16", GgmlType.BF16), (36, "TQ1_0", GgmlType.TQ1_0),
            (37, "TQ2_0", GgmlType.TQ2_0), (38, "MXFP4_MOE", GgmlType.MXFP4), (39, "NVFP4", null), (40, "Q1_0", GgmlType.Q1_0),
            (41, "Q2_0", GgmlType.Q2_0),
        };
        Assert.Equal(expected.Length, LlamaFileTypes.All.Count);
        foreach (var (id, name, def) in expected)
        {
            var row = LlamaFileTypes.Get((LlamaFileType)id);
            Assert.Equal(name, row.Name);
            Assert.Equal(def, row.DefaultType);
            Assert.Equal(name, ((LlamaFileType)id).ToString());
        }
        foreach (uint gap in new uint[] { 4, 5, 6, 33, 34, 35, 42 }) Assert.False(LlamaFileTypes.IsDefined(gap));
    }

    [Fact]
    public void Every_ggml_type_a_file_type_stands_for_maps_back()
    {
        foreach (var row in LlamaFileTypes.All.Where(r => r.DefaultType is not null))
        {
            var ft = LlamaFileTypes.FileTypeFor(row.DefaultType!.Value);
            Assert.NotNull(ft);
            Assert.Equal(row.DefaultType, LlamaFileTypes.Get(ft!.Value).DefaultType);
        }
        Assert.Null(LlamaFileTypes.FileTypeFor(GgmlType.Q8_K));
        Assert.Null(LlamaFileTypes.FileTypeFor(GgmlType.Q8_1));
    }

    [Theory]
    [InlineData("COPY", "COPY")]
    [InlineData("copy", "COPY")]
    [InlineData("15", "Q4_K")]
    [InlineData("12", "Q3_K")]
    [InlineData("0", "F32")]
    [InlineData("q4_k_m", "Q4_K_M")]
    [InlineData("q5_k", "Q5_K")]
    [InlineData("iq2_s", "IQ2_S")]
    public void Copy_parses_and_names_follow_llama_quantize(string text, string name)
    {
        Assert.Equal(name, LlamaFileTypes.QuantizeName(text));
        var t = LlamaFileTypes.Parse(text);
        Assert.Equal(name == "COPY", t.IsCopy);
    }
}
