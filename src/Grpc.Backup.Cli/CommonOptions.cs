using System.CommandLine;

namespace Grpc.Backup.Cli;

/// <summary>Options several commands share, defined once.</summary>
internal static class CommonOptions
{
    public static Option<string> Endpoint() => new("--endpoint")
    {
        Description = "The provider's gRPC socket, e.g. unix:/run/grpc-backup/directory.sock",
        Required = true,
    };

    public static Option<bool> Json() => new("--json") { Description = "Print JSON for scripts instead of text" };

    public static Option<ulong> BandwidthLimit() => new("--bwlimit")
    {
        Description = "Bandwidth limit in bytes per second, enforced by the host (0: unlimited)",
        DefaultValueFactory = _ => 0,
    };
}
