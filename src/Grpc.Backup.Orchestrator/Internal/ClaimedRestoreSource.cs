using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Backup.Host;
using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Microsoft.Win32.SafeHandles;
using FdKind = Grpc.Backup.Transport.FdKind;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// One device's restore source as the provider named it in <c>RestoreVmVolumeInit</c> (an fd, a path or an
/// <c>nbd+unix</c> URI), claimed and judged as untrusted input, never probed: a file is a regular file (or an allowed
/// block device) of the declared size; an NBD source is a socket connected to the provider's own server, its size
/// checked by whoever completes the handshake (<see cref="CheckNbdSize"/>). Shared by the plain restore (which copies
/// it) and the live restore (which serves it to QEMU through an <see cref="NbdGuard"/>).
/// </summary>
internal sealed class ClaimedRestoreSource : IDisposable
{
    private SafeFileHandle? _file;
    private Socket? _socket;
    private readonly Func<CancellationToken, Task<Socket>>? _reconnect;

    private ClaimedRestoreSource(SafeFileHandle? file, Socket? socket, string exportName, Func<CancellationToken, Task<Socket>>? reconnect)
    {
        _file = file;
        _socket = socket;
        ExportName = exportName;
        _reconnect = reconnect;
    }

    /// <summary>Whether the source is a file or block device (else an NBD export).</summary>
    public bool IsFile => _file is not null;

    /// <summary>The NBD export's name (NBD sources).</summary>
    public string ExportName { get; }

    /// <summary>Whether <see cref="ConnectAgainAsync"/> can reach the export again (a URI source; a passed socket cannot).</summary>
    public bool CanReconnect => _reconnect is not null;

    /// <summary>
    /// Asks the provider for <paramref name="volume"/>'s source (<c>RestoreVmVolumeInit</c>, with the host's sideband
    /// channel and the restore bandwidth limit) and claims what it answers.
    /// </summary>
    public static async Task<ClaimedRestoreSource> RequestAsync(ProviderConnection provider, string restoreId, string archiveName, VolumeSize volume,
        ulong bandwidthLimit, bool allowBlockDevicePaths, string? runtimeDirectory, CancellationToken cancellationToken)
    {
        FdChannel channel = await provider.GetFdChannelAsync(cancellationToken);
        var response = await provider.Restore.RestoreVmVolumeInitAsync(new RestoreVmVolumeInitRequest
        {
            RestoreId = restoreId,
            ArchiveName = archiveName,
            DeviceName = volume.DeviceName,
            FdChannelId = ByteString.CopyFrom(channel.ChannelId.ToByteArray()),
            BandwidthLimit = new BandwidthLimit { BytesPerSecond = bandwidthLimit },
        }, deadline: ProviderDeadlines.FromNow(ProviderDeadlines.Preparation), cancellationToken: cancellationToken);
        return await ClaimAsync(provider, response, volume, channel.Peer.UserId, allowBlockDevicePaths, runtimeDirectory, cancellationToken);
    }

    private static async Task<ClaimedRestoreSource> ClaimAsync(ProviderConnection provider, RestoreVmVolumeInitResponse response, VolumeSize volume,
        uint providerUid, bool allowBlockDevicePaths, string? runtimeDirectory, CancellationToken cancellationToken)
    {
        string device = volume.DeviceName;
        switch (response.SourceCase)
        {
            case RestoreVmVolumeInitResponse.SourceOneofCase.Fd:
                using (PassedFd passed = await provider.ClaimFdAsync(response.Fd, cancellationToken))
                {
                    return passed.Kind == FdKind.NbdSocket
                        ? new ClaimedRestoreSource(null, passed.TakeSocket(), response.NbdExportName, null)
                        : new ClaimedRestoreSource(CheckFile(passed.TakeFileHandle(), volume), null, "", null);
                }
            case RestoreVmVolumeInitResponse.SourceOneofCase.Path:
                // Opened by root: it must belong to the provider, or the provider could make the host copy any host file
                // (say /etc/shadow) into a guest disk; and it is judged before it is opened for reading (a FIFO would block).
                return new ClaimedRestoreSource(CheckFile(UntrustedPath.OpenFile(device, response.Path, providerUid, allowBlockDevicePaths), volume),
                    null, "", null);
            case RestoreVmVolumeInitResponse.SourceOneofCase.NbdUri:
                if (!NbdUri.TryParse(response.NbdUri, out NbdUri? uri))
                {
                    throw new BackupException($"{device}: the provider's NBD URI is not nbd+unix:///EXPORT?socket=PATH");
                }
                // Root connects: only to the provider's own socket, never to another service's (QEMU's, another provider's),
                // and every connection again passes the same checks.
                Func<CancellationToken, Task<Socket>> connect = token =>
                    UntrustedPath.ConnectProviderSocketAsync(device, uri.SocketPath, providerUid, runtimeDirectory, token);
                return new ClaimedRestoreSource(null, await connect(cancellationToken), uri.ExportName, connect);
            default:
                throw new BackupException($"{device}: the provider gave no restore source");
        }
    }

    /// <summary>The file or block device (the caller owns it).</summary>
    public SafeFileHandle TakeFile() => Interlocked.Exchange(ref _file, null) ?? throw new InvalidOperationException("not a file source, or taken");

    /// <summary>The connected socket, before any handshake (the caller owns it).</summary>
    public Socket TakeNbdSocket() => Interlocked.Exchange(ref _socket, null) ?? throw new InvalidOperationException("not an NBD source, or taken");

    /// <summary>A new connection to the same export (URI sources), through the same checks as the first.</summary>
    public Task<Socket> ConnectAgainAsync(CancellationToken cancellationToken) =>
        (_reconnect ?? throw new InvalidOperationException("a passed NBD socket cannot be connected again"))(cancellationToken);

    /// <summary>An NBD export must have exactly the size the archive declares.</summary>
    public static void CheckNbdSize(VolumeSize volume, long exportSize)
    {
        if (exportSize != (long)volume.SizeBytes)
        {
            throw new BackupException($"{volume.DeviceName}: the provider's NBD export has {exportSize} bytes; the archive says {volume.SizeBytes}");
        }
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _file, null)?.Dispose();
        Interlocked.Exchange(ref _socket, null)?.Dispose();
    }

    /// <summary>
    /// A file or block device read as raw data, whatever it contains: the host never probes its format (data that
    /// happens to begin with a qcow2 header is a guest's data, and it restores byte-exact).
    /// </summary>
    private static SafeFileHandle CheckFile(SafeFileHandle handle, VolumeSize volume)
    {
        try
        {
            PassedFileInfo info = PassedFileInfo.Get(handle);
            if (info.Kind is not (FdKind.File or FdKind.BlockDevice))
            {
                throw new BackupException($"{volume.DeviceName}: the restore source is not a regular file or block device");
            }
            if (info.Kind == FdKind.File && info.Size != volume.SizeBytes)
            {
                throw new BackupException($"{volume.DeviceName}: the restore source has {info.Size} bytes; the archive says {volume.SizeBytes}");
            }
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}
