using Grpc.Backup.Containers;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Orchestrator;

public sealed partial class ContainerBackupRunner
{
    /// <summary>
    /// TAR_STREAM: the host's own tar reads the view as the container's root; the pipe's read end goes to the
    /// provider. The provider may end its call OK when the pipe reaches EOF even though tar failed, so tar's outcome
    /// is awaited after the call: a failed tar fails the backup and BackupCleanup(success=false) discards it.
    /// </summary>
    private async Task<(IReadOnlyList<string> Warnings, FileManifest? Manifest, TimeSpan ManifestDuration)> RunTarStreamAsync(BackupContainerRequest request, ContainerBackupOptions viewOptions,
        ContainerGuest guest, TaskLog log, TimeSpan inactivity, CancellationToken cancellationToken)
    {
        await using TarStreamBackup tar = await TarStreamBackup.StartAsync(viewOptions, cancellationToken);
        await PrepareAsync(request.BackupId, ContainerBackupMechanism.TarStream, guest, tar.Sources, viewOptions.BytesPerSecond, cancellationToken);
        request.Sources.AddRange(tar.Sources);
        IReadOnlyList<FdRef> refs = await provider.SendFdsAsync([new FdToSend(tar.ReadHandle, Transport.FdKind.Pipe)], cancellationToken);
        // The provider holds the only read end from now on: if it goes away, tar's writes fail instead of blocking.
        tar.ReadHandle.Dispose();
        request.TarStream = refs[0];
        using var watchdog = new BackupWatchdog(inactivity, fleecingDirectory: null, fleecingReserve: 0, cancellationToken);
        using var call = provider.Backup.BackupContainer(request, cancellationToken: watchdog.Token);
        try
        {
            await ReadEventsAsync(call, log, watchdog);
        }
        catch
        {
            await tar.DisposeAsync();
            throw;
        }
        TarStreamBackupResult result = await tar.Completion;
        log.Info($"tar stream: {result.BytesWritten} bytes");
        return (result.Warnings, result.Manifest, result.ManifestDuration);
    }
}
