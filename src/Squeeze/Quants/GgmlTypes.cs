using System.Collections.Frozen;

namespace Squeeze.Quants;

/// <summary>
/// The ggml type table (ggml.c <c>type_traits</c>): one row per type id of the oracle's ggml build.
/// Block sizes and bytes per block are facts of the file format, from ggml-common.h.
/// </summary>
public static class GgmlTypes
{
    /// <summary>One past the largest type id (ggml's <c>GGML_TYPE_COUNT</c>).</summary>
    public const int Count = 43;

    /// <summary>Elements in a k-quant super-block (ggml's <c>QK_K</c>).</summary>
    public const int QK_K = 256;

    private static readonly GgmlTypeTraits?[] Table = Build();

    private static readonly FrozenDictionary<string, GgmlTypeTraits> ByName =
        All.ToFrozenDictionary(t => t.Name, StringComparer.OrdinalIgnoreCase);

    private static GgmlTypeTraits?[] Build()
    {
        var rows = new GgmlTypeTraits[]
        {
            new(GgmlType.F32, "f32", 1, 4, false),
            new(GgmlType.F16, "f16", 1, 2, false),
            new(GgmlType.Q4_0, "q4_0", 32, 18, true),
            new(GgmlType.Q4_1, "q4_1", 32, 20, true),
            new(GgmlType.Q5_0, "q5_0", 32, 22, true),
            new(GgmlType.Q5_1, "q5_1", 32, 24, true),
            new(GgmlType.Q8_0, "q8_0", 32, 34, true),
            new(GgmlType.Q8_1, "q8_1", 32, 36, true),
            new(GgmlType.Q2_K, "q2_K", QK_K, 84, true),
            new(GgmlType.Q3_K, "q3_K", QK_K, 110, true),
            new(GgmlType.Q4_K, "q4_K", QK_K, 144, true),
            new(GgmlType.Q5_K, "q5_K", QK_K, 176, true),
            new(GgmlType.Q6_K, "q6_K", QK_K, 210, true),
            new(GgmlType.Q8_K, "q8_K", QK_K, 292, true),
            new(GgmlType.IQ2_XXS, "iq2_xxs", QK_K, 66, true),
            new(GgmlType.IQ2_XS, "iq2_xs", QK_K, 74, true),
            new(GgmlType.IQ3_XXS, "iq3_xxs", QK_K, 98, true),
            new(GgmlType.IQ1_S, "iq1_s", QK_K, 50, true),
            new(GgmlType.IQ4_NL, "iq4_nl", 32, 18, true),
            new(GgmlType.IQ3_S, "iq3_s", QK_K, 110, true),
            new(GgmlType.IQ2_S, "iq2_s", QK_K, 82, true),
            new(GgmlType.IQ4_XS, "iq4_xs", QK_K, 136, true),
            new(GgmlType.I8, "i8", 1, 1, false),
            new(GgmlType.I16, "i16", 1, 2, false),
            new(GgmlType.I32, "i32", 1, 4, false),
            new(GgmlType.I64, "i64", 1, 8, false),
            new(GgmlType.F64, "f64", 1, 8, false),
            new(GgmlType.IQ1_M, "iq1_m", QK_K, 56, true),
            new(GgmlType.BF16, "bf16", 1, 2, false),
            new(GgmlType.TQ1_0, "tq1_0", QK_K, 54, true),
            new(GgmlType.TQ2_0, "tq2_0", QK_K, 66, true),
            new(GgmlType.MXFP4, "mxfp4", 32, 17, true),
            new(GgmlType.NVFP4, "nvfp4", 64, 36, true),
            new(GgmlType.Q1_0, "q1_0", 128, 18, true),
            new(GgmlType.Q2_0, "q2_0", 64, 18, true),
        };
        var table = new GgmlTypeTraits?[Count];
        foreach (var row in rows) table[(int)row.Type] = row;
        return table;
    }

    /// <summary>Every type that exists, in id order.</summary>
    public static IEnumerable<GgmlTypeTraits> All => Table.OfType<GgmlTypeTraits>();

    /// <summary>Whether <paramref name="id"/> names an existing type (not a gap, not past the end).</summary>
    public static bool IsDefined(uint id) => id < Count && Table[id] is not null;

    /// <summary>The traits of <paramref name="type"/>; throws for an id that is not a type.</summary>
    public static GgmlTypeTraits Get(GgmlType type) =>
        (uint)type < Count && Table[(int)type] is { } row
            ? row
            : throw new ArgumentOutOfRangeException(nameof(type), (uint)type, "not a ggml type id");

    /// <summary>Finds a type by its ggml name, ignoring case (<c>Q4_K</c>, <c>q4_k</c> and <c>q4_K</c> all match).</summary>
    public static bool TryParse(string name, out GgmlType type)
    {
        if (ByName.TryGetValue(name, out var row)) { type = row.Type; return true; }
        type = default;
        return false;
    }

    /// <summary>The ggml name of <paramref name="type"/>.</summary>
    public static string Name(this GgmlType type) => Get(type).Name;

    /// <summary>Bytes of a row of <paramref name="n"/> elements of <paramref name="type"/> (checked).</summary>
    public static long RowSize(GgmlType type, long n) => Get(type).RowSize(n);
}
