using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// <c>notifications/NAME.conf</c>: where a job's end is reported. Jobs name targets with <c>notify: NAME ...</c>.
/// <code>
/// type: webhook
/// url-file: /etc/grpc-backup/secrets/hook-url    # root-only 0600 file holding the URL (or: url: https://..., if it holds no secret)
/// header-file: /etc/grpc-backup/secrets/hook-headers   # optional, root-only: "Name: value" lines (e.g. Authorization)
/// timeout: 10                                    # seconds per attempt; three attempts
///
/// type: sendmail
/// mailto: root@localhost ops@example.com
/// from: grpc-backup@pve1                         # default: grpc-backup@NODE
/// sendmail: /usr/sbin/sendmail                   # default; root-owned, not group/other-writable
/// </code>
/// URLs and headers are secrets: they are read from root-only files, passed to nobody, and never logged; logs name
/// the target.
/// </summary>
internal abstract record NotificationTarget(string Name)
{
    public static NotificationTarget Parse(string file, string text)
    {
        string name = Path.GetFileNameWithoutExtension(file);
        if (!GuestSelection.IsPlainName(name))
        {
            throw new ConfigException(file, 0, $"notification target name '{name}' (the file name) must match [A-Za-z0-9._-]{{1,64}}");
        }
        var values = new Dictionary<string, ConfigLine>(StringComparer.Ordinal);
        foreach (ConfigLine line in ConfigLine.Parse(file, text))
        {
            if (!values.TryAdd(line.Key, line))
            {
                throw line.Error($"'{line.Key}' is already given on line {values[line.Key].Number}");
            }
        }
        if (!values.TryGetValue("type", out ConfigLine type))
        {
            throw new ConfigException(file, 0, "missing 'type: webhook' or 'type: sendmail'");
        }
        return type.Value switch
        {
            "webhook" => WebhookTarget.Parse(name, file, values),
            "sendmail" => SendmailTarget.Parse(name, file, values),
            _ => throw type.Error($"type '{type.Value}' is not known; use webhook or sendmail"),
        };
    }

    internal static ConfigLine? Optional(IReadOnlyDictionary<string, ConfigLine> values, string key) =>
        values.TryGetValue(key, out ConfigLine line) ? line : null;

    internal static void RefuseUnknown(IReadOnlyDictionary<string, ConfigLine> values, params string[] known)
    {
        foreach (var (key, line) in values)
        {
            if (key != "type" && !known.Contains(key, StringComparer.Ordinal))
            {
                throw line.Error($"unknown key '{key}' (this type knows type, {string.Join(", ", known)})");
            }
        }
    }
}
