namespace Squeeze.Quants;

internal static partial class Iq3Grids
{
    /// <summary>
    /// <see cref="Iq2Grids.KSigns"/> spread to eight bytes of +1/-1 (byte j is -1 when sign bit j is set), the operand
    /// <c>vpsignb</c> needs; ggml-cpu keeps the same table as <c>keven_signs_q2xs</c>.
    /// </summary>
    public static readonly ulong[] EvenSigns = BuildEvenSigns();

    private static ulong[] BuildEvenSigns()
    {
        var table = new ulong[128];
        for (int s = 0; s < 128; s++)
        {
            ulong v = 0;
            for (int j = 0; j < 8; j++)
                v |= (ulong)((Iq2Grids.KSigns[s] >> j & 1) != 0 ? 0xFF : 0x01) << 8 * j;
            table[s] = v;
        }
        return table;
    }
}
