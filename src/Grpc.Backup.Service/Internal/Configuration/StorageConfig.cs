using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// <c>storages/NAME.conf</c>: one backup provider and how jobs use it.
/// <code>
/// endpoint: unix:/run/grpc-backup/directory.sock    # or: unit: grpc-backup-provider-directory.socket
/// option: compression=zstd                         # passed to the provider in JobInit, one per line
/// secret: password /etc/grpc-backup/secrets/borg   # a root-only file the provider reads; only its path is passed
/// max-concurrent: 1                                # guest backups at once into this repository from this host
/// cluster-max-backups: 2                           # in a cluster: from all hosts together (default: max-concurrent)
/// </code>
/// </summary>
/// <param name="Name">The file name without <c>.conf</c>; it also names the guests' dirty bitmaps.</param>
internal sealed record StorageConfig(string Name, ProviderEndpoint Endpoint, IReadOnlyDictionary<string, string> Options,
    uint MaxConcurrent, string File)
{
    /// <summary>Guest backups at once into this storage from the whole cluster (etcd slots); unused on a host alone.</summary>
    public uint ClusterMaxBackups { get; init; } = MaxConcurrent;

    public static StorageConfig Parse(string file, string text)
    {
        string name = Path.GetFileNameWithoutExtension(file);
        if (!GuestSelection.IsPlainName(name) || name.Length > 32)
        {
            throw new ConfigException(file, 0, $"storage name '{name}' (the file name) must match [A-Za-z0-9._-]{{1,32}}");
        }
        ProviderEndpoint? endpoint = null;
        ConfigLine? endpointLine = null;
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        string? maxConcurrent = null, clusterMax = null;
        uint max = 1, clusterLimit = 0;
        foreach (ConfigLine line in ConfigLine.Parse(file, text))
        {
            switch (line.Key)
            {
                case "endpoint" or "unit":
                    if (endpointLine is { } first)
                    {
                        throw line.Error($"the provider is already given on line {first.Number}; a storage has one endpoint or unit");
                    }
                    endpointLine = line;
                    endpoint = line.Key == "endpoint" ? ParseEndpoint(line) : SystemdSocketUnit.Resolve(line);
                    break;
                case "option":
                    int eq = line.Value.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                    {
                        throw line.Error($"expected 'option: key=value', got '{line.Value}'");
                    }
                    string key = line.Value[..eq].Trim();
                    if (key == Protocol.FencingToken.OptionName)
                    {
                        throw line.Error($"option '{key}' is the cluster's: the service sets it from the slot each backup holds");
                    }
                    if (key.EndsWith("-file", StringComparison.Ordinal) || key.Contains("password", StringComparison.OrdinalIgnoreCase))
                    {
                        throw line.Error($"option '{key}' looks like a secret; secrets go in a root-only file named with 'secret: NAME /path'");
                    }
                    if (!options.TryAdd(key, line.Value[(eq + 1)..].Trim()))
                    {
                        throw line.Error($"option '{key}' is given twice");
                    }
                    break;
                case "secret":
                    string[] words = line.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (words.Length != 2 || !GuestSelection.IsPlainName(words[0]))
                    {
                        throw line.Error("expected 'secret: NAME /absolute/path'");
                    }
                    // The provider reads the secret itself; the host checks the file is root-only and passes its path.
                    ConfigValues.TrustedFile(line, words[1], executable: false, secret: true);
                    if (!options.TryAdd(words[0] + "-file", words[1]))
                    {
                        throw line.Error($"secret '{words[0]}' is given twice");
                    }
                    break;
                case "max-concurrent":
                    maxConcurrent = ConfigValues.Single(line, maxConcurrent);
                    max = ConfigValues.Count(line, 64);
                    if (max == 0)
                    {
                        throw line.Error("max-concurrent must be at least 1");
                    }
                    break;
                case "cluster-max-backups":
                    clusterMax = ConfigValues.Single(line, clusterMax);
                    clusterLimit = ConfigValues.Count(line, 1024);
                    if (clusterLimit == 0)
                    {
                        throw line.Error("cluster-max-backups must be at least 1");
                    }
                    break;
                default:
                    throw line.Error($"unknown key '{line.Key}' (a storage knows endpoint, unit, option, secret, max-concurrent, cluster-max-backups)");
            }
        }
        return endpoint is null
            ? throw new ConfigException(file, 0, "missing 'endpoint: unix:/path/to/provider.sock' (or 'unit: NAME.socket')")
            : new StorageConfig(name, endpoint, options, max, file) { ClusterMaxBackups = clusterLimit == 0 ? max : clusterLimit };
    }

    private static ProviderEndpoint ParseEndpoint(ConfigLine line)
    {
        try
        {
            return ProviderEndpoint.Parse(line.Value);
        }
        catch (FormatException e)
        {
            throw line.Error(e.Message);
        }
    }
}
