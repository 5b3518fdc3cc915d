using System.Text.RegularExpressions;
using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// A backup's notes from a template, as vzdump's notes-template: <c>{{guestname}}</c>, <c>{{vmid}}</c> and
/// <c>{{node}}</c> are replaced; any other <c>{{...}}</c> is refused when the config is loaded, not at backup time.
/// </summary>
internal sealed partial record NotesTemplate(string Text)
{
    private static readonly string[] Known = ["guestname", "vmid", "node"];

    public static NotesTemplate Parse(ConfigLine line)
    {
        foreach (Match m in Placeholder().Matches(line.Value))
        {
            if (!Known.Contains(m.Groups[1].Value, StringComparer.Ordinal))
            {
                throw line.Error($"unknown placeholder '{m.Value}' in notes-template; known: {{{{guestname}}}}, {{{{vmid}}}}, {{{{node}}}}");
            }
        }
        if (System.Text.Encoding.UTF8.GetByteCount(line.Value) > 1024)
        {
            throw line.Error("notes-template is longer than 1024 bytes");
        }
        return new NotesTemplate(line.Value);
    }

    public string Render(string guestName, string guestId, string node) => Placeholder().Replace(Text, m => m.Groups[1].Value switch
    {
        "guestname" => guestName,
        "vmid" => guestId,
        _ => node,
    });

    [GeneratedRegex(@"\{\{\s*([^}]*?)\s*\}\}")]
    private static partial Regex Placeholder();
}
