namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// <c>&lt;repo&gt;/&lt;guest_id&gt;/incremental-state.json</c>: for each device, the archive of the last successful
/// backup, which is what the host's dirty bitmap counts from. Only a successful BackupCleanup moves it, so a failed
/// backup leaves the chain where it was; and if that archive is deleted, the next backup of the device is full.
/// </summary>
internal sealed class IncrementalState
{
    public Dictionary<string, string> LastArchiveByDevice { get; init; } = new(StringComparer.Ordinal);
}
