using System.Diagnostics;
using Google.Protobuf;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// Restores a container archive from a provider into a fresh root file system: RestoreGetMechanism, the configs,
/// RestoreContainerInit, a validate-while-extract of the tar inside the target container's user namespace
/// (<see cref="ContainerRestore"/>), and RestoreContainerCleanup on every path. A privileged target is refused before
/// the provider is asked for anything, as Proxmox refuses it.
/// </summary>
public sealed partial class ContainerRestoreRunner(ProviderConnection provider, ILogger<ContainerRestoreRunner> logger)
{
    public async Task<ContainerRestoreRunResult> RestoreAsync(string archiveName, ContainerRestoreRunOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.IdMap.IsPrivileged)
        {
            throw new ContainerRestoreException($"refusing to restore {archiveName} as a privileged container (id map: {options.IdMap}): "
                + "extraction from a provider's archive would run as host root; give the container an id map");
        }
        await CheckMechanismAsync(archiveName, cancellationToken);
        byte[] guestConfig = (await provider.Restore.ArchiveGetGuestConfigAsync(new ArchiveGetGuestConfigRequest { ArchiveName = archiveName },
            cancellationToken: cancellationToken)).GuestConfig.ToByteArray();
        var firewall = await provider.Restore.ArchiveGetFirewallConfigAsync(new ArchiveGetFirewallConfigRequest { ArchiveName = archiveName },
            cancellationToken: cancellationToken);

        // Opened first, so a config directory that is refused fails the restore before anything is extracted.
        using RestoreTarget configs = RestoreTarget.Open(options.ConfigDirectory);
        try
        {
            return await RestoreIntoAsync(archiveName, options, guestConfig, firewall, configs, cancellationToken);
        }
        catch
        {
            configs.RemoveCreated();
            throw;
        }
    }

    private async Task<ContainerRestoreRunResult> RestoreIntoAsync(string archiveName, ContainerRestoreRunOptions options, byte[] guestConfig,
        ArchiveGetFirewallConfigResponse firewall, RestoreTarget configs, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var restoreOptions = new ContainerRestoreOptions
        {
            IdMap = options.IdMap,
            TargetDirectory = options.TargetRootFileSystem,
            BytesPerSecond = options.BandwidthLimit,
        };
        ContainerRestoreResult extraction = await ReadArchiveAsync(archiveName,
            (archive, token) => ContainerRestore.RunAsync(archive, restoreOptions, token), cancellationToken);
        // Created exclusively with no symlink followed, as a VM restore's: a planted guest.conf link writes nowhere.
        await configs.WriteFileAsync("guest.conf", guestConfig, cancellationToken);
        if (firewall.Present)
        {
            await configs.WriteFileAsync("firewall.conf", firewall.FirewallConfig.Memory, cancellationToken);
        }
        foreach (string warning in extraction.Warnings)
        {
            LogWarning(logger, archiveName, warning);
        }
        LogRestored(logger, archiveName, options.TargetRootFileSystem, stopwatch.Elapsed.TotalSeconds);
        return new ContainerRestoreRunResult(extraction, guestConfig,
            // Typed, or a null byte[] would become an empty, non-null ReadOnlyMemory: "no firewall config" lost.
            firewall.Present ? (ReadOnlyMemory<byte>?)firewall.FirewallConfig.ToByteArray() : null);
    }

    private async Task CheckMechanismAsync(string archiveName, CancellationToken cancellationToken)
    {
        var mechanism = await provider.Restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = archiveName },
            cancellationToken: cancellationToken);
        if (mechanism.GuestType != GuestType.Container || mechanism.MechanismCase != RestoreGetMechanismResponse.MechanismOneofCase.Container
            || !provider.Capabilities.ContainerRestoreMechanisms.Contains(mechanism.Container))
        {
            throw new BackupException($"archive {archiveName} is a {mechanism.GuestType} archive with mechanism {mechanism.MechanismCase}; expected a container archive");
        }
    }

    /// <summary>
    /// RestoreContainerInit, <paramref name="read"/> on the archive's stream, which is closed as soon as it returns (a
    /// file restore stops early, and a provider feeding a pipe then sees it closed), and RestoreContainerCleanup on
    /// every path.
    /// </summary>
    private async Task<T> ReadArchiveAsync<T>(string archiveName, Func<Stream, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        string restoreId = Guid.NewGuid().ToString();
        try
        {
            FdChannel channel = await provider.GetFdChannelAsync(cancellationToken);
            var init = await provider.Restore.RestoreContainerInitAsync(new RestoreContainerInitRequest
            {
                RestoreId = restoreId,
                ArchiveName = archiveName,
                FdChannelId = ByteString.CopyFrom(channel.ChannelId.ToByteArray()),
            }, cancellationToken: cancellationToken);
            await using Stream archive = await OpenSourceAsync(init, channel.Peer, cancellationToken);
            return await read(archive, cancellationToken);
        }
        finally
        {
            await provider.Restore.RestoreContainerCleanupAsync(new RestoreContainerCleanupRequest { RestoreId = restoreId, ArchiveName = archiveName },
                cancellationToken: CancellationToken.None);
        }
    }

    /// <summary>The archive as a stream; a path must belong to the provider, or it could make root read any host file into the container.</summary>
    private async Task<Stream> OpenSourceAsync(RestoreContainerInitResponse init, UnixPeerCredentials providerPeer, CancellationToken cancellationToken)
    {
        switch (init.SourceCase)
        {
            case RestoreContainerInitResponse.SourceOneofCase.TarFd:
                using (PassedFd passed = await provider.ClaimFdAsync(init.TarFd, cancellationToken))
                {
                    if (passed.Kind is not (Transport.FdKind.File or Transport.FdKind.Pipe))
                    {
                        throw new BackupException($"the provider passed a {passed.Kind} as the container archive; expected a file or a pipe");
                    }
                    return new FileStream(passed.TakeFileHandle(), FileAccess.Read, bufferSize: 0);
                }
            case RestoreContainerInitResponse.SourceOneofCase.TarPath:
                return new FileStream(UntrustedPath.OpenFile("container archive", init.TarPath, providerPeer.UserId, allowBlockDevice: false),
                    FileAccess.Read, bufferSize: 0);
            case RestoreContainerInitResponse.SourceOneofCase.DirectoryPath:
                return DirectoryArchive.Open(init.DirectoryPath, providerPeer.UserId, providerPeer.GroupId);
            default:
                throw new BackupException("the provider gave no container restore source");
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "restore of {Archive}: {Warning}")]
    private static partial void LogWarning(ILogger logger, string archive, string warning);

    [LoggerMessage(Level = LogLevel.Information, Message = "restored {Archive} into {Target} in {Seconds:F1} s")]
    private static partial void LogRestored(ILogger logger, string archive, string target, double seconds);
}
