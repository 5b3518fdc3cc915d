namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>Per device of one guest: the archive of its last successful backup and the size it had.</summary>
internal sealed class IncrementalState
{
    public Dictionary<string, IncrementalBase> Devices { get; set; } = [];
}
