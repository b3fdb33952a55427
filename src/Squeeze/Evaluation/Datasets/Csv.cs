using System.Text;

namespace Squeeze.Evaluation.Datasets;

/// <summary>RFC 4180 CSV: fields separated by commas, quoted fields may hold commas, line breaks and doubled quotes.</summary>
internal static class Csv
{
    /// <summary>The records of <paramref name="text"/> with the line each starts on.</summary>
    public static List<(int Line, List<string> Fields)> Parse(string text, string source)
    {
        var records = new List<(int, List<string>)>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, recordLine = 1, i = 0;
        bool quoted = false, any = false;
        while (i < text.Length)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                    quoted = false; i++; continue;
                }
                if (c == '\n') line++;
                field.Append(c); i++; continue;
            }
            switch (c)
            {
                case '"' when field.Length == 0: quoted = true; any = true; i++; break;
                case ',': fields.Add(field.ToString()); field.Clear(); any = true; i++; break;
                case '\r' when i + 1 < text.Length && text[i + 1] == '\n': i++; break;
                case '\n':
                    if (any || field.Length > 0) { fields.Add(field.ToString()); records.Add((recordLine, fields)); }
                    fields = []; field.Clear(); any = false; line++; recordLine = line; i++; break;
                default: field.Append(c); any = true; i++; break;
            }
        }
        if (quoted) throw new Tasks.TaskFileException(source, $"line {recordLine}", "a quoted field is not closed");
        if (any || field.Length > 0) { fields.Add(field.ToString()); records.Add((recordLine, fields)); }
        return records;
    }
}
