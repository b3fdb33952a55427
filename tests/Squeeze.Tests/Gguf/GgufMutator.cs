using System.Buffers.Binary;

namespace Squeeze.Tests.Gguf;

/// <summary>Seeded random damage to GGUF images: bit flips, random bytes, cuts, insertions, deletions, extreme field values.</summary>
public static class GgufMutator
{
    /// <summary>Values that break counts, lengths, type ids, offsets and sizes.</summary>
    private static readonly ulong[] Extremes =
    [
        0, 1, 2, 3, 4, 5, 7, 8, 12, 13, 31, 32, 33, 42, 43, 63, 64, 65, 255, 256, 1000, 0x7FFF, 0xFFFF,
        0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1UL << 32, (1UL << 30) + 1, 1UL << 40, 1UL << 62,
        0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE,
    ];

    /// <summary>
    /// One to four mutations of <paramref name="original"/>; field overwrites land on <paramref name="boundaries"/>.
    /// Returns the mutant and a description of what was done.
    /// </summary>
    public static (byte[] Bytes, string What) Mutate(byte[] original, IReadOnlyList<long> boundaries, Random rng)
    {
        var bytes = (byte[])original.Clone();
        var what = new List<string>();
        int steps = rng.Next(4) == 0 ? rng.Next(2, 5) : 1;
        for (int s = 0; s < steps; s++)
        {
            switch (rng.Next(6))
            {
                case 0: // flip bits
                {
                    int n = rng.Next(1, 5);
                    for (int k = 0; k < n && bytes.Length > 0; k++)
                    {
                        int at = rng.Next(bytes.Length);
                        bytes[at] ^= (byte)(1 << rng.Next(8));
                        what.Add($"flip@{at}");
                    }
                    break;
                }
                case 1: // random byte
                {
                    if (bytes.Length == 0) break;
                    int at = rng.Next(bytes.Length);
                    bytes[at] = (byte)rng.Next(256);
                    what.Add($"byte@{at}");
                    break;
                }
                case 2: // truncate
                {
                    int length = rng.Next(bytes.Length + 1);
                    bytes = bytes[..length];
                    what.Add($"cut@{length}");
                    break;
                }
                case 3: // insert bytes
                {
                    int at = rng.Next(bytes.Length + 1);
                    var extra = new byte[rng.Next(1, 17)];
                    rng.NextBytes(extra);
                    bytes = [.. bytes[..at], .. extra, .. bytes[at..]];
                    what.Add($"insert{extra.Length}@{at}");
                    break;
                }
                case 4: // delete bytes
                {
                    if (bytes.Length == 0) break;
                    int at = rng.Next(bytes.Length);
                    int n = Math.Min(rng.Next(1, 17), bytes.Length - at);
                    bytes = [.. bytes[..at], .. bytes[(at + n)..]];
                    what.Add($"delete{n}@{at}");
                    break;
                }
                default: // overwrite a field with an extreme value
                {
                    long at = boundaries[rng.Next(boundaries.Count)];
                    ulong v = Extremes[rng.Next(Extremes.Length)];
                    if (rng.Next(4) == 0) v = unchecked(v + (ulong)rng.Next(-2, 3));
                    int width = rng.Next(3) switch { 0 => 4, 1 => 8, _ => rng.Next(2) == 0 ? 1 : 2 };
                    if (at + width > bytes.Length) break;
                    Span<byte> le = stackalloc byte[8];
                    BinaryPrimitives.WriteUInt64LittleEndian(le, v);
                    le[..width].CopyTo(bytes.AsSpan((int)at));
                    what.Add($"set{width}@{at}={v:X}");
                    break;
                }
            }
        }
        return (bytes, string.Join(" ", what));
    }
}
