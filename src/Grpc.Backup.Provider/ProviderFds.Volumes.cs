using System.Net.Sockets;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Provider;

/// <summary>Claiming a BackupVm volume's snapshot fds (claims expire: claim every volume's at once, first).</summary>
public sealed partial class ProviderFds
{
    /// <summary>
    /// Claims an NBD volume's sockets: the named one and its extra connections (the same transfer, the indexes after
    /// it), all or none. The caller owns them.
    /// </summary>
    public async Task<List<Socket>> ClaimNbdSocketsAsync(ValidatedVmVolume volume, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(volume);
        NbdVolumeSource nbd = volume.Nbd ?? throw new ArgumentException($"{volume.Device} has no NBD source", nameof(volume));
        var claimed = new List<Socket>();
        try
        {
            FdRef first = nbd.Socket;
            for (uint i = 0; i <= nbd.ExtraConnections; i++)
            {
                var reference = new FdRef { TransferToken = first.TransferToken, Index = first.Index + i, Kind = first.Kind };
                using PassedFd passed = await ClaimAsync(reference, cancellationToken);
                claimed.Add(passed.TakeSocket());
            }
            return claimed;
        }
        catch
        {
            claimed.ForEach(s => s.Dispose());
            throw;
        }
    }

    /// <summary>
    /// Claims a FILE_HANDLE volume's snapshot file; its length must be the declared size (INVALID_ARGUMENT otherwise,
    /// SNAPSHOT_BROKEN if it cannot be read). The caller owns it.
    /// </summary>
    public async Task<SafeFileHandle> ClaimSnapshotFileAsync(ValidatedVmVolume volume, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(volume);
        FileVolumeSource source = volume.File ?? throw new ArgumentException($"{volume.Device} has no file source", nameof(volume));
        using PassedFd passed = await ClaimAsync(source.File, cancellationToken);
        SafeFileHandle file = passed.TakeFileHandle();
        long length;
        try
        {
            length = RandomAccess.GetLength(file);
        }
        catch (IOException e)
        {
            file.Dispose();
            throw SnapshotErrors.Broken(volume.Device, "reading the size of its file", e);
        }
        if (length != volume.SizeBytes)
        {
            file.Dispose();
            throw ContractErrors.InvalidArgument($"device {volume.Device} was declared with {volume.SizeBytes} bytes but its file has {length}");
        }
        return file;
    }
}
