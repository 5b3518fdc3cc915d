using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// <c>host.conf</c>: settings of this host. All optional.
/// <code>
/// node: pve1                              # the name hooks and notes see ({{node}}); default: the host name
/// max-backups: 2                          # guest backups at once on this host (OpenNebula MAX_BACKUPS_HOST)
/// fleecing-dir: /var/lib/grpc-backup/fleecing   # default for jobs that name none
/// tmp-dir: /var/tmp                       # containers' views and suspend copies (must be traversable, as vzdump's)
/// </code>
/// </summary>
internal sealed record HostSettings(string Node, uint MaxBackups, string FleecingDirectory, string TemporaryDirectory)
{
    public static HostSettings Default(string stateDirectory) =>
        new(Environment.MachineName, 1, Path.Combine(stateDirectory, "fleecing"), "/var/tmp");

    public static HostSettings Parse(string file, string text, string stateDirectory)
    {
        HostSettings settings = Default(stateDirectory);
        string? node = null, maxBackups = null, fleecing = null, temporary = null;
        foreach (ConfigLine line in ConfigLine.Parse(file, text))
        {
            switch (line.Key)
            {
                case "node":
                    node = ConfigValues.Single(line, node);
                    if (!GuestSelection.IsPlainName(node))
                    {
                        throw line.Error($"node name '{node}' must match [A-Za-z0-9._-]{{1,64}}");
                    }
                    settings = settings with { Node = node };
                    break;
                case "max-backups":
                    maxBackups = ConfigValues.Single(line, maxBackups);
                    uint max = ConfigValues.Count(line, 64);
                    settings = settings with { MaxBackups = max == 0 ? throw line.Error("max-backups must be at least 1") : max };
                    break;
                case "fleecing-dir":
                    fleecing = ConfigValues.Single(line, fleecing);
                    settings = settings with { FleecingDirectory = ConfigValues.AbsolutePath(line, fleecing) };
                    break;
                case "tmp-dir":
                    temporary = ConfigValues.Single(line, temporary);
                    settings = settings with { TemporaryDirectory = ConfigValues.AbsolutePath(line, temporary) };
                    break;
                default:
                    throw line.Error($"unknown key '{line.Key}' (host.conf knows node, max-backups, fleecing-dir, tmp-dir)");
            }
        }
        return settings;
    }
}
