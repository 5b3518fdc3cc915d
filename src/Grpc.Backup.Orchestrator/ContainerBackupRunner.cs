using Google.Protobuf;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// Backs up one container through one provider, in the contract's order: BackupInit, BackupGetMechanism, a consistent
/// view inside the container's user namespace, BackupContainerPrepare, BackupContainer fed by the host's tar
/// (TAR_STREAM, <c>ContainerBackupRunner.TarStream.cs</c>) or by the provider's worker run as the container's root
/// (DIRECTORY, <c>ContainerBackupRunner.Worker.cs</c>), then the log hand-off and BackupCleanup on every path.
/// </summary>
public sealed partial class ContainerBackupRunner(ProviderConnection provider, ILogger<ContainerBackupRunner> logger)
{
    public async Task<ContainerBackupResult> BackupAsync(string jobId, ContainerGuest guest, ContainerBackupRunOptions options,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(guest);
        ArgumentNullException.ThrowIfNull(options);
        using GuestLock? guestLock = options.LockDirectory is null ? null : GuestLock.Acquire(options.LockDirectory, guest.GuestId);
        var (result, stats) = await new GuestBackupSession(provider, logger).RunAsync(jobId, GuestType.Container, guest.GuestId, guest.Name,
            options.RuntimeDirectory, options.BackupId, (backupId, archiveName, log) => RunAsync(backupId, archiveName, guest, options, log, cancellationToken),
            cancellationToken);
        return result with { Stats = stats };
    }

    private async Task<ContainerBackupResult> RunAsync(string backupId, string archiveName, ContainerGuest guest, ContainerBackupRunOptions options,
        TaskLog log, CancellationToken cancellationToken)
    {
        if (guest.IsPrivileged)
        {
            log.Warn($"container {guest.GuestId} is privileged (id map: {guest.IdMap}): it is read as host root, and a provider restore of it will be refused");
        }
        var answer = await provider.Backup.BackupGetMechanismAsync(
            new BackupGetMechanismRequest { BackupId = backupId, GuestType = GuestType.Container }, cancellationToken: cancellationToken);
        ContainerBackupMechanism mechanism = answer.MechanismCase == BackupGetMechanismResponse.MechanismOneofCase.Container ? answer.Container : default;
        if (mechanism is not (ContainerBackupMechanism.TarStream or ContainerBackupMechanism.Directory)
            || !provider.Capabilities.ContainerBackupMechanisms.Contains(mechanism))
        {
            throw new BackupException($"provider chose container mechanism {mechanism}, which this host does not offer or the provider did not advertise");
        }
        IReadOnlyList<string>? workerArgv = mechanism == ContainerBackupMechanism.Directory
            ? WorkerCommand.Check(answer.ContainerWorker, guest, (await provider.GetFdChannelAsync(cancellationToken)).Peer.UserId)
            : null;
        var request = new BackupContainerRequest
        {
            BackupId = backupId,
            GuestConfig = ByteString.CopyFrom(guest.RawConfig.Span),
            BandwidthLimit = new BandwidthLimit { BytesPerSecond = options.BandwidthLimit },
        };
        request.ExcludePatterns.AddRange(options.ExcludePatterns);
        if (guest.FirewallConfigPath is { } firewall)
        {
            request.FirewallConfig = ByteString.CopyFrom(await File.ReadAllBytesAsync(firewall, cancellationToken));
            request.HasFirewallConfig = true;
        }
        var viewOptions = new ContainerBackupOptions
        {
            IdMap = guest.IdMap,
            RootFileSystem = guest.RootFileSystem,
            MountPoints = guest.MountPoints,
            Mode = options.Mode,
            Freezer = guest.Cgroup is { } cgroup ? new CgroupFreezer(cgroup) : null,
            ExcludePatterns = options.ExcludePatterns,
            // TAR_STREAM: the host paces the pipe. DIRECTORY: the worker does, told by BACKUP_BWLIMIT.
            BytesPerSecond = options.BandwidthLimit,
            TemporaryDirectory = options.TemporaryDirectory,
            ComputeFileManifest = options.ComputeFileManifest,
        };
        log.Info($"mode {options.Mode}, mechanism {mechanism}");
        (IReadOnlyList<string> warnings, FileManifest? manifest, TimeSpan manifestDuration) = workerArgv is null
            ? await RunTarStreamAsync(request, viewOptions, guest, log, options.ProviderInactivityTimeout, cancellationToken)
            : await RunWorkerAsync(request, workerArgv, viewOptions, guest, log, options.ProviderInactivityTimeout, cancellationToken);
        foreach (string warning in warnings)
        {
            log.Warn(warning);
        }
        if (manifest is not null)
        {
            log.Info($"file manifest: {manifest.Entries.Count} entries, {manifest.ContentBytes} bytes hashed in {manifestDuration.TotalSeconds:F2} s");
        }
        return new ContainerBackupResult(archiveName, mechanism, new BackupStats(), warnings, guest.IsPrivileged, manifest);
    }

    private static async Task<bool> MoveNextAsync(AsyncServerStreamingCall<BackupContainerEvent> call, BackupWatchdog watchdog)
    {
        try
        {
            return await call.ResponseStream.MoveNext(watchdog.Token);
        }
        catch (Exception e) when (watchdog.Failure is { } failure && e is OperationCanceledException or RpcException)
        {
            throw failure;
        }
    }

    private async Task PrepareAsync(string backupId, ContainerBackupMechanism mechanism, ContainerGuest guest, IEnumerable<string> sources,
        ulong bytesPerSecond, CancellationToken cancellationToken)
    {
        var prepare = new BackupContainerPrepareRequest
        {
            BackupId = backupId,
            Mechanism = mechanism,
            RootHostUid = guest.IdMap.RootHostUid,
            RootHostGid = guest.IdMap.RootHostGid,
            BandwidthLimit = new BandwidthLimit { BytesPerSecond = bytesPerSecond },
        };
        prepare.Sources.AddRange(sources);
        await provider.Backup.BackupContainerPrepareAsync(prepare, cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Reads the provider's events to the end of the call, logging them. The call must have been started with
    /// <paramref name="watchdog"/>'s token: a provider that reports no progress for the inactivity timeout is cancelled.
    /// </summary>
    private static async Task ReadEventsAsync(AsyncServerStreamingCall<BackupContainerEvent> call, TaskLog log, BackupWatchdog watchdog)
    {
        DateTime lastProgress = DateTime.MinValue;
        while (await MoveNextAsync(call, watchdog))
        {
            BackupContainerEvent e = call.ResponseStream.Current;
            if (e.EventCase == BackupContainerEvent.EventOneofCase.Progress)
            {
                watchdog.Kick();
            }
            if (e.EventCase == BackupContainerEvent.EventOneofCase.Log)
            {
                log.Info($"provider: {e.Log.Message}");
            }
            else if (e.EventCase == BackupContainerEvent.EventOneofCase.Progress && DateTime.UtcNow - lastProgress > TimeSpan.FromSeconds(5))
            {
                lastProgress = DateTime.UtcNow;
                log.Info($"{e.Progress.BytesDone} bytes stored");
            }
        }
    }
}
