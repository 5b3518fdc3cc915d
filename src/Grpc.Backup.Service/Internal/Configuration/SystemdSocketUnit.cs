using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// <c>unit: NAME.socket</c>: the provider is socket-activated by systemd, and its endpoint is the unit's
/// <c>ListenStream=</c> path, read from the unit file so the two can never disagree.
/// </summary>
internal static class SystemdSocketUnit
{
    /// <summary>Where systemd looks for units, most specific first; overridable for tests.</summary>
    public static IReadOnlyList<string> SearchPath { get; set; } = ["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

    public static ProviderEndpoint Resolve(ConfigLine line)
    {
        string unit = line.Value;
        if (!unit.EndsWith(".socket", StringComparison.Ordinal) || unit.Contains('/', StringComparison.Ordinal) || unit.Length > 256)
        {
            throw line.Error($"'{unit}' is not a socket unit name such as grpc-backup-provider-directory.socket");
        }
        string? file = SearchPath.Select(d => Path.Combine(d, unit)).FirstOrDefault(File.Exists)
            ?? throw line.Error($"socket unit {unit} not found in {string.Join(", ", SearchPath)}");
        string[] streams = File.ReadLines(file)
            .Select(l => l.Trim())
            .Where(l => l.StartsWith("ListenStream=", StringComparison.Ordinal))
            .Select(l => l["ListenStream=".Length..].Trim())
            .ToArray();
        if (streams.Length != 1)
        {
            throw line.Error($"{file} must have exactly one ListenStream= (found {streams.Length})");
        }
        try
        {
            return ProviderEndpoint.Parse("unix:" + streams[0]);
        }
        catch (FormatException e)
        {
            throw line.Error($"{file}: ListenStream={streams[0]}: {e.Message}");
        }
    }
}
