namespace Grpc.Backup.Orchestrator;

/// <summary>Where and how a VM archive is restored live (the guest runs while its disks stream in).</summary>
public sealed class LiveRestoreOptions
{
    /// <summary>The directory for the qcow2 disks and configs, with the rules of <see cref="VmRestoreOptions.TargetDirectory"/>.</summary>
    public required string TargetDirectory { get; init; }

    /// <summary>
    /// The restore bandwidth limit in bytes per second over all its disks (0: unlimited): block-stream's <c>speed</c>,
    /// split evenly among the disks' jobs, so it bounds the background copy only; the guest's own reads of data not yet
    /// streamed are never held back by it.
    /// </summary>
    public ulong BandwidthLimit { get; init; }

    /// <summary>
    /// QEMU's NBD <c>reconnect-delay</c>: for this long after the guarded export's connection drops, the guest's reads
    /// of data not yet streamed wait (and are re-sent on reconnect); after it they fail, which the guest's devices
    /// (<c>rerror=stop</c>) turn into a paused VM, never an I/O error inside the guest.
    /// </summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>As <see cref="VmRestoreOptions.AllowBlockDevicePaths"/>.</summary>
    public bool AllowBlockDevicePaths { get; init; }

    /// <summary>As <see cref="VmRestoreOptions.ProviderRuntimeDirectory"/>.</summary>
    public string? ProviderRuntimeDirectory { get; init; }
}
