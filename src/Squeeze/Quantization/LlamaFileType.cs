using System.Collections.Frozen;
using System.Globalization;
using Squeeze.Quants;

namespace Squeeze.Quantization;

/// <summary>
/// llama.cpp's file types (<c>llama_ftype</c> in include/llama.h at 815a2a591): the value written to
/// <c>general.file_type</c>. The ids are stored in files, so they never change; removed ids leave gaps
/// (4-6, 33-35). <see cref="LlamaFileTypes"/> holds each one's name and default tensor type.
/// </summary>
public enum LlamaFileType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 7,
    Q5_0 = 8,
    Q5_1 = 9,
    Q2_K = 10,
    Q3_K_S = 11,
    Q3_K_M = 12,
    Q3_K_L = 13,
    Q4_K_S = 14,
    Q4_K_M = 15,
    Q5_K_S = 16,
    Q5_K_M = 17,
    Q6_K = 18,
    IQ2_XXS = 19,
    IQ2_XS = 20,
    Q2_K_S = 21,
    IQ3_XS = 22,
    IQ3_XXS = 23,
    IQ1_S = 24,
    IQ4_NL = 25,
    IQ3_S = 26,
    IQ3_M = 27,
    IQ2_S = 28,
    IQ2_M = 29,
    IQ4_XS = 30,
    IQ1_M = 31,
    BF16 = 32,
    TQ1_0 = 36,
    TQ2_0 = 37,
    MXFP4_MOE = 38,
    NVFP4 = 39,
    Q1_0 = 40,
    Q2_0 = 41,
}

/// <summary>
/// One row of the file-type table.
/// </summary>
/// <param name="FileType">The id.</param>
/// <param name="Name">The name llama-quantize accepts and prints (<c>Q4_K_M</c>).</param>
/// <param name="DefaultType">
/// The tensor type every quantizable tensor gets under <c>--pure</c> (llama.cpp's <c>llama_ftype_get_default_type</c>);
/// null where llama.cpp defines none (NVFP4: llama-quantize cannot write that file type).
/// </param>
/// <param name="Aliases">Other names llama-quantize accepts for it (<c>Q4_K</c> for Q4_K_M).</param>
/// <param name="Description">llama-quantize's one-line description.</param>
public sealed record LlamaFileTypeInfo(LlamaFileType FileType, string Name, GgmlType? DefaultType, IReadOnlyList<string> Aliases, string Description)
{
    /// <summary>Whether llama-quantize lists this file type (it accepts the name and the number).</summary>
    public bool IsListed => DefaultType is not null;

    public override string ToString() => Name;
}

/// <summary>
/// What a TYPE argument of <c>quantize</c> resolved to: the file type recorded in <c>general.file_type</c> and the
/// tensor type quantizable tensors get under <c>--pure</c>.
/// </summary>
/// <param name="FileType">The file type.</param>
/// <param name="TensorType">The tensor type (the file type's default type, or the ggml type named).</param>
/// <param name="Name">The canonical name of what was asked for (<c>Q4_K_M</c>, or a ggml type name such as <c>nvfp4</c>).</param>
/// <param name="IsGgmlTypeName">Whether TYPE named a ggml type rather than a file type.</param>
public sealed record QuantizeTarget(LlamaFileType FileType, GgmlType TensorType, string Name, bool IsGgmlTypeName)
{
    /// <summary>
    /// llama-quantize's COPY: every tensor is copied as it is, and <c>general.file_type</c> is the input's (F32 is only
    /// the nominal file type).
    /// </summary>
    public bool IsCopy { get; init; }

    /// <summary>COPY.</summary>
    public static QuantizeTarget Copy { get; } = new(LlamaFileType.F32, GgmlType.F32, "COPY", false) { IsCopy = true };

    public override string ToString() => IsGgmlTypeName ? $"{Name} (file type {LlamaFileTypes.Get(FileType).Name})" : Name;
}

/// <summary>
/// The file-type table (llama.cpp's <c>llama_ftype</c>, <c>llama_ftype_get_default_type</c> in src/llama-quant.cpp and
/// llama-quantize's <c>QUANT_OPTIONS</c> in tools/quantize/quantize.cpp, all at 815a2a591), and TYPE parsing as
/// llama-quantize does it.
/// </summary>
public static class LlamaFileTypes
{
    private static readonly LlamaFileTypeInfo[] Rows =
    [
        new(LlamaFileType.F32, "F32", GgmlType.F32, [], "26.00G              @ 7B"),
        new(LlamaFileType.F16, "F16", GgmlType.F16, [], "14.00G, +0.0020 ppl @ Mistral-7B"),
        new(LlamaFileType.Q4_0, "Q4_0", GgmlType.Q4_0, [], " 4.34G, +0.4685 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q4_1, "Q4_1", GgmlType.Q4_1, [], " 4.78G, +0.4511 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q8_0, "Q8_0", GgmlType.Q8_0, [], " 7.96G, +0.0026 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q5_0, "Q5_0", GgmlType.Q5_0, [], " 5.21G, +0.1316 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q5_1, "Q5_1", GgmlType.Q5_1, [], " 5.65G, +0.1062 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q2_K, "Q2_K", GgmlType.Q2_K, [], " 2.96G, +3.5199 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q3_K_S, "Q3_K_S", GgmlType.Q3_K, [], " 3.41G, +1.6321 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q3_K_M, "Q3_K_M", GgmlType.Q3_K, ["Q3_K"], " 3.74G, +0.6569 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q3_K_L, "Q3_K_L", GgmlType.Q3_K, [], " 4.03G, +0.5562 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q4_K_S, "Q4_K_S", GgmlType.Q4_K, [], " 4.37G, +0.2689 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q4_K_M, "Q4_K_M", GgmlType.Q4_K, ["Q4_K"], " 4.58G, +0.1754 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q5_K_S, "Q5_K_S", GgmlType.Q5_K, [], " 5.21G, +0.1049 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q5_K_M, "Q5_K_M", GgmlType.Q5_K, ["Q5_K"], " 5.33G, +0.0569 ppl @ Llama-3-8B"),
        new(LlamaFileType.Q6_K, "Q6_K", GgmlType.Q6_K, [], " 6.14G, +0.0217 ppl @ Llama-3-8B"),
        new(LlamaFileType.IQ2_XXS, "IQ2_XXS", GgmlType.IQ2_XXS, [], " 2.06 bpw quantization"),
        new(LlamaFileType.IQ2_XS, "IQ2_XS", GgmlType.IQ2_XS, [], " 2.31 bpw quantization"),
        new(LlamaFileType.Q2_K_S, "Q2_K_S", GgmlType.Q2_K, [], " 2.96G, +3.1836 ppl @ Llama-3-8B"),
        new(LlamaFileType.IQ3_XS, "IQ3_XS", GgmlType.IQ3_S, [], " 3.3 bpw quantization"),
        new(LlamaFileType.IQ3_XXS, "IQ3_XXS", GgmlType.IQ3_XXS, [], " 3.06 bpw quantization"),
        new(LlamaFileType.IQ1_S, "IQ1_S", GgmlType.IQ1_S, [], " 1.56 bpw quantization"),
        new(LlamaFileType.IQ4_NL, "IQ4_NL", GgmlType.IQ4_NL, [], " 4.50 bpw non-linear quantization"),
        new(LlamaFileType.IQ3_S, "IQ3_S", GgmlType.IQ3_S, [], " 3.44 bpw quantization"),
        new(LlamaFileType.IQ3_M, "IQ3_M", GgmlType.IQ3_S, [], " 3.66 bpw quantization mix"),
        // Note the names: file type IQ2_S stores IQ2_XS tensors and IQ2_M stores IQ2_S tensors.
        new(LlamaFileType.IQ2_S, "IQ2_S", GgmlType.IQ2_XS, [], " 2.5  bpw quantization"),
        new(LlamaFileType.IQ2_M, "IQ2_M", GgmlType.IQ2_S, [], " 2.7  bpw quantization"),
        new(LlamaFileType.IQ4_XS, "IQ4_XS", GgmlType.IQ4_XS, [], " 4.25 bpw non-linear quantization"),
        new(LlamaFileType.IQ1_M, "IQ1_M", GgmlType.IQ1_M, [], " 1.75 bpw quantization"),
        new(LlamaFileType.BF16, "BF16", GgmlType.BF16, [], "14.00G, -0.0050 ppl @ Mistral-7B"),
        new(LlamaFileType.TQ1_0, "TQ1_0", GgmlType.TQ1_0, [], " 1.69 bpw ternarization"),
        new(LlamaFileType.TQ2_0, "TQ2_0", GgmlType.TQ2_0, [], " 2.06 bpw ternarization"),
        new(LlamaFileType.MXFP4_MOE, "MXFP4_MOE", GgmlType.MXFP4, [], " MXFP4 MoE"),
        new(LlamaFileType.NVFP4, "NVFP4", null, [], " NVFP4 (not written by llama-quantize)"),
        new(LlamaFileType.Q1_0, "Q1_0", GgmlType.Q1_0, [], " 1.125 bpw quantization"),
        new(LlamaFileType.Q2_0, "Q2_0", GgmlType.Q2_0, [], " 2.25 bpw quantization (group 64)"),
    ];

    private static readonly FrozenDictionary<LlamaFileType, LlamaFileTypeInfo> ById = Rows.ToFrozenDictionary(r => r.FileType);

    private static readonly FrozenDictionary<string, LlamaFileTypeInfo> ByName =
        Rows.Where(r => r.IsListed)
            .SelectMany(r => r.Aliases.Prepend(r.Name).Select(n => KeyValuePair.Create(n, r)))
            .ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    /// <summary>Every file type, in id order.</summary>
    public static IReadOnlyList<LlamaFileTypeInfo> All => Rows;

    /// <summary>Whether <paramref name="id"/> is a file type of the oracle's llama.cpp.</summary>
    public static bool IsDefined(uint id) => ById.ContainsKey((LlamaFileType)id);

    /// <summary>The row of <paramref name="fileType"/>.</summary>
    public static LlamaFileTypeInfo Get(LlamaFileType fileType) =>
        ById.TryGetValue(fileType, out var row) ? row : throw new ArgumentOutOfRangeException(nameof(fileType), (uint)fileType, "not a llama.cpp file type");

    /// <summary>The canonical name of <paramref name="fileType"/> (<c>Q4_K_M</c>).</summary>
    public static string Name(this LlamaFileType fileType) => Get(fileType).Name;

    /// <summary>The tensor type of <paramref name="fileType"/> under <c>--pure</c>, or null when llama.cpp defines none.</summary>
    public static GgmlType? DefaultType(this LlamaFileType fileType) => Get(fileType).DefaultType;

    /// <summary>
    /// Parses a TYPE argument. In order, as llama-quantize tries them: a file-type name or alias, ignoring case
    /// (<c>q4_k_m</c>, <c>Q4_K</c>); a file-type number (<c>15</c>); then, beyond llama-quantize, a ggml type name
    /// (<c>nvfp4</c>, <c>mxfp4</c>), which maps to the file type whose default is that type. A name that is both
    /// (IQ2_S) is the file type, as in llama-quantize: its tensors are IQ2_XS.
    /// </summary>
    public static bool TryParse(string text, out QuantizeTarget? target)
    {
        target = null;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        if (text.Equals("COPY", StringComparison.OrdinalIgnoreCase))
        {
            target = QuantizeTarget.Copy;
            return true;
        }
        if (ByName.TryGetValue(text, out var row))
        {
            target = new(row.FileType, row.DefaultType!.Value, row.Name, false);
            return true;
        }
        if (uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint id)
            && ById.TryGetValue((LlamaFileType)id, out row) && row.IsListed)
        {
            target = new(row.FileType, row.DefaultType!.Value, row.Name, false);
            return true;
        }
        if (GgmlTypes.TryParse(text, out var type) && FileTypeFor(type) is { } fileType)
        {
            target = new(fileType, type, type.Name(), true);
            return true;
        }
        return false;
    }

    /// <summary>
    /// The name llama-quantize gives TYPE (it names the default output <c>ggml-model-NAME.gguf</c>): the matched name or
    /// alias in capitals (<c>q4_k</c> gives <c>Q4_K</c>); for a number, the first of its names in llama-quantize's
    /// list (12, 15 and 17 give the aliases <c>Q3_K</c>, <c>Q4_K</c>, <c>Q5_K</c>; 0 gives <c>F32</c>).
    /// </summary>
    public static string QuantizeName(string text)
    {
        if (!TryParse(text, out var target)) throw new FormatException($"'{text}' is not a file type");
        text = text.Trim();
        if (target!.IsCopy) return "COPY";
        if (uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            var row = Get(target.FileType);
            return row.Aliases.Count > 0 ? row.Aliases[0] : row.Name;
        }
        if (ByName.TryGetValue(text, out var named))
            return named.Aliases.Prepend(named.Name).First(n => n.Equals(text, StringComparison.OrdinalIgnoreCase));
        return target.Name.ToUpperInvariant();
    }

    /// <summary>The name of a file type as written to a file, also for ids llama.cpp marks as guessed (1024 set).</summary>
    public static string DisplayName(LlamaFileType fileType)
    {
        uint id = (uint)fileType;
        if (ById.TryGetValue(fileType, out var row)) return row.Name;
        if ((id & QuantizationPlan.GuessedFlag) != 0 && ById.TryGetValue((LlamaFileType)(id & ~QuantizationPlan.GuessedFlag), out row))
            return $"{row.Name} (guessed)";
        return id.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Parses a TYPE argument; throws <see cref="FormatException"/> listing the accepted names.</summary>
    public static QuantizeTarget Parse(string text) =>
        TryParse(text, out var t) ? t! : throw new FormatException(
            $"'{text}' is not a file type ({string.Join(", ", Rows.Where(r => r.IsListed).Select(r => r.Name))}, COPY) or a ggml type name");

    /// <summary>
    /// The file type recorded when quantizing every tensor to <paramref name="type"/>: the first whose default type
    /// it is; NVFP4 maps to the NVFP4 file type. Null for types no file type stands for (Q8_1, Q8_K, integers).
    /// </summary>
    public static LlamaFileType? FileTypeFor(GgmlType type)
    {
        if (type == GgmlType.NVFP4) return LlamaFileType.NVFP4;
        foreach (var r in Rows)
            if (r.DefaultType == type) return r.FileType;
        return null;
    }
}
