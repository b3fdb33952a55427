using System.CommandLine;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Spectre.Console;
using Squeeze.Gguf;
using Squeeze.Models;
using Squeeze.Quants;

namespace Squeeze.Cli.Commands;

/// <summary><c>squeeze inspect FILE.gguf [--tensors] [--full] [--json]</c>: header, metadata, tensors, totals, layers.</summary>
internal static class InspectCommand
{
    private const int ShortArrayItems = 6, ShortStringChars = 120;

    public static Command Create()
    {
        var file = new Argument<FileInfo>("file") { Description = "The GGUF file to inspect." };
        var tensors = new Option<bool>("--tensors") { Description = "List every tensor (name, type, shape, bytes, offset)." };
        var full = new Option<bool>("--full") { Description = "Show long arrays and strings in full." };
        var json = new Option<bool>("--json") { Description = "Print machine-readable JSON instead of tables." };
        var command = new Command("inspect", "Show a GGUF file's header, metadata, tensors and per-layer sizes.") { file, tensors, full, json };
        command.SetAction(p => CommandRunner.Run(() =>
            Run(p.GetRequiredValue(file), p.GetValue(tensors), p.GetValue(full), p.GetValue(json))));
        return command;
    }

    private static int Run(FileInfo path, bool showTensors, bool full, bool json)
    {
        using var file = GgufFile.Open(path.FullName);
        var summary = ModelSummary.Of(file.Tensors);
        if (json) WriteJson(file, summary, full);
        else Render(file, summary, showTensors, full);
        return CommandRunner.Ok;
    }

    private static void Render(GgufFile file, ModelSummary summary, bool showTensors, bool full)
    {
        var console = AnsiConsole.Console;
        console.Write(new Rule($"[bold]{Markup.Escape(Path.GetFileName(file.Path ?? "GGUF"))}[/]").LeftJustified());
        var header = new Grid().AddColumn().AddColumn();
        header.AddTextRow("GGUF version", file.Version.ToString(CultureInfo.InvariantCulture));
        header.AddTextRow("architecture", file.Architecture ?? "(none)");
        header.AddTextRow("metadata keys", file.Metadata.Count.ToString(CultureInfo.InvariantCulture));
        header.AddTextRow("tensors", file.Tensors.Count.ToString(CultureInfo.InvariantCulture));
        header.AddTextRow("alignment", file.Alignment.ToString(CultureInfo.InvariantCulture));
        header.AddTextRow("data offset", file.DataOffset.ToString(CultureInfo.InvariantCulture));
        header.AddTextRow("file size", Format.Bytes(file.Length));
        console.Write(header);

        var meta = new Table().Title("metadata").AddColumn(new TableColumn("key").NoWrap()).AddColumn("type").AddColumn("value");
        foreach (var (key, value) in file.Metadata)
            meta.AddTextRow(key, TypeLabel(value), ValueText(value, full));
        console.Write(meta);

        if (showTensors)
        {
            var t = new Table().Title("tensors").AddColumn(new TableColumn("name").NoWrap()).AddColumn("type").AddColumn("shape")
                .AddColumn(new TableColumn("bytes").RightAligned()).AddColumn(new TableColumn("offset").RightAligned());
            foreach (var x in file.Tensors)
                t.AddTextRow(x.Name, x.Type.Name(), string.Join(" x ", x.Shape),
                    x.ByteSize.ToString("N0", CultureInfo.InvariantCulture), x.Offset.ToString(CultureInfo.InvariantCulture));
            console.Write(t);
        }

        if (summary.Layers.Count > 0)
        {
            var layers = new Table().Title("layers").AddColumn(new TableColumn("layer").RightAligned())
                .AddColumn(new TableColumn("parameters").RightAligned()).AddColumn(new TableColumn("bytes").RightAligned())
                .AddColumn(new TableColumn("bpw").RightAligned()).AddColumn("types");
            foreach (var (layer, s) in summary.Layers)
                layers.AddTextRow(layer.ToString(CultureInfo.InvariantCulture), Format.Count(s.Parameters), Format.Bytes(s.Bytes), Format.Bpw(s.BitsPerWeight), TypesText(s));
            if (summary.NonLayer.Parameters > 0)
                layers.AddTextRow("other", Format.Count(summary.NonLayer.Parameters), Format.Bytes(summary.NonLayer.Bytes), Format.Bpw(summary.NonLayer.BitsPerWeight), TypesText(summary.NonLayer));
            console.Write(layers);
        }

        var totals = summary.Totals;
        console.Write(new Markup("[bold]total[/]: "));
        console.WriteLine($"{Format.Count(totals.Parameters)} parameters, {Format.Bytes(totals.Bytes)} of tensor data, " +
            $"{Format.Bpw(totals.BitsPerWeight)} bits per weight; types: {TypesText(totals)}");
    }

    private static string TypesText(TensorGroupSummary s) => string.Join(", ", s.Types.Select(kv => $"{kv.Key.Name()} x{kv.Value}"));

    private static string TypeLabel(GgufValue v) =>
        v.Value is GgufArray a ? $"arr[{a.ElementType.ShortName()}]" : v.Type.ShortName();

    private static string ValueText(GgufValue v, bool full)
    {
        if (v.Value is string s) return full || s.Length <= ShortStringChars ? Quote(s) : Quote(s[..ShortStringChars]) + $"... ({s.Length} chars)";
        if (v.Value is not GgufArray a) return v.ToString();
        int shown = full ? a.Count : Math.Min(a.Count, ShortArrayItems);
        var items = Enumerable.Range(0, shown).Select(i => a[i].Value is string str ? Quote(str) : a[i].ToString());
        var text = "[" + string.Join(", ", items) + (shown < a.Count ? ", ..." : "") + "]";
        return shown < a.Count ? $"{a.Count} items: {text}" : text;
    }

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Quote(string s) => JsonSerializer.Serialize(s, Relaxed);

    private static void WriteJson(GgufFile file, ModelSummary summary, bool full)
    {
        var buffer = new MemoryStream();
        using var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteString("file", file.Path);
        w.WriteNumber("version", file.Version);
        w.WriteNumber("alignment", file.Alignment);
        w.WriteNumber("data_offset", file.DataOffset);
        w.WriteNumber("file_size", file.Length);
        w.WriteStartObject("metadata");
        foreach (var (key, value) in file.Metadata)
        {
            w.WriteStartObject(key);
            w.WriteString("type", value.Type.ShortName());
            if (value.Value is GgufArray a)
            {
                w.WriteString("element_type", a.ElementType.ShortName());
                w.WriteNumber("count", a.Count);
            }
            w.WritePropertyName("value");
            WriteJsonValue(w, value, full);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteStartArray("tensors");
        foreach (var t in file.Tensors)
        {
            w.WriteStartObject();
            w.WriteString("name", t.Name);
            w.WriteString("type", t.Type.Name());
            w.WriteStartArray("shape");
            foreach (var n in t.Shape) w.WriteNumberValue(n);
            w.WriteEndArray();
            w.WriteNumber("bytes", t.ByteSize);
            w.WriteNumber("offset", t.Offset);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WritePropertyName("totals");
        WriteJsonGroup(w, summary.Totals);
        w.WriteStartArray("layers");
        foreach (var (layer, s) in summary.Layers)
        {
            w.WriteStartObject();
            w.WriteNumber("layer", layer);
            WriteJsonGroupFields(w, s);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
        Console.Out.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
    }

    private static void WriteJsonGroup(Utf8JsonWriter w, TensorGroupSummary s)
    {
        w.WriteStartObject();
        WriteJsonGroupFields(w, s);
        w.WriteEndObject();
    }

    private static void WriteJsonGroupFields(Utf8JsonWriter w, TensorGroupSummary s)
    {
        w.WriteNumber("parameters", s.Parameters);
        w.WriteNumber("bytes", s.Bytes);
        w.WriteNumber("bpw", Math.Round(s.BitsPerWeight, 4));
        w.WriteStartObject("types");
        foreach (var (type, count) in s.Types) w.WriteNumber(type.Name(), count);
        w.WriteEndObject();
    }

    private static void WriteJsonValue(Utf8JsonWriter w, GgufValue v, bool full)
    {
        switch (v.Value)
        {
            case GgufArray a:
                w.WriteStartArray();
                int shown = full ? a.Count : Math.Min(a.Count, ShortArrayItems);
                for (int i = 0; i < shown; i++) WriteJsonValue(w, a[i], full);
                w.WriteEndArray();
                break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case float f when float.IsFinite(f): w.WriteNumberValue(f); break;
            case double d when double.IsFinite(d): w.WriteNumberValue(d); break;
            case float or double: w.WriteStringValue(v.ToString()); break;
            case ulong u: w.WriteNumberValue(u); break;
            default: w.WriteNumberValue(v.AsInt64()); break;
        }
    }
}
