using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Protocol;
using Grpc.Backup.Provider;
using Grpc.Core;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>Checks BackupVmStart completely before anything is claimed, created or read.</summary>
internal static class BackupVmValidation
{
    /// <summary>More extra connections than this make no sense (a transfer carries at most 64 fds).</summary>
    public const uint MaxExtraConnections = 63;

    public static List<ValidatedVolume> Validate(BackupVmStart start)
    {
        if (start.Volumes.Count == 0)
        {
            throw DirectoryErrors.InvalidArgument("BackupVmStart has no volumes");
        }
        var devices = new HashSet<string>(StringComparer.Ordinal);
        var volumes = new List<ValidatedVolume>(start.Volumes.Count);
        foreach (VmVolume volume in start.Volumes)
        {
            string device = volume.DeviceName;
            if (!ProtocolNames.IsValidDeviceName(device))
            {
                throw DirectoryErrors.InvalidArgument($"device name '{device}' does not match [A-Za-z0-9._+=-]{{1,128}}");
            }
            if (!devices.Add(device))
            {
                throw DirectoryErrors.InvalidArgument($"device {device} is listed twice");
            }
            if (volume.SizeBytes == 0 || volume.SizeBytes > long.MaxValue)
            {
                throw DirectoryErrors.InvalidArgument($"device {device} has the invalid size {volume.SizeBytes}");
            }
            if (volume.BitmapMode is not (BitmapMode.None or BitmapMode.New or BitmapMode.Reuse))
            {
                throw DirectoryErrors.InvalidArgument($"device {device} has no valid bitmap_mode ({volume.BitmapMode})");
            }
            switch (volume.SourceCase)
            {
                case VmVolume.SourceOneofCase.Nbd:
                    volumes.Add(new ValidatedVolume(device, (long)volume.SizeBytes, volume.BitmapMode, ValidateNbd(device, volume), null));
                    break;
                case VmVolume.SourceOneofCase.File:
                    if (volume.File.File is not { Kind: FdKind.File })
                    {
                        throw DirectoryErrors.InvalidArgument($"device {device}: the file source is missing or not declared FD_KIND_FILE");
                    }
                    volumes.Add(new ValidatedVolume(device, (long)volume.SizeBytes, volume.BitmapMode, null, volume.File));
                    break;
                default:
                    throw DirectoryErrors.InvalidArgument($"device {device} has no source");
            }
        }
        return volumes;
    }

    private static NbdVolumeSource ValidateNbd(string device, VmVolume volume)
    {
        NbdVolumeSource nbd = volume.Nbd;
        if (nbd.Socket is null)
        {
            throw DirectoryErrors.InvalidArgument($"device {device} has no NBD socket");
        }
        if (nbd.Socket.Kind != FdKind.NbdSocket)
        {
            throw DirectoryErrors.InvalidArgument($"device {device}: the NBD socket is declared as {nbd.Socket.Kind}");
        }
        if (volume.BitmapMode == BitmapMode.Reuse && string.IsNullOrEmpty(nbd.BitmapContext))
        {
            throw DirectoryErrors.InvalidArgument($"device {device} is REUSE but names no bitmap_context");
        }
        if (volume.BitmapMode != BitmapMode.Reuse && !string.IsNullOrEmpty(nbd.BitmapContext))
        {
            throw DirectoryErrors.InvalidArgument($"device {device} names a bitmap_context but its bitmap_mode is {volume.BitmapMode}");
        }
        if (nbd.ExtraConnections > MaxExtraConnections || nbd.Socket.Index + (ulong)nbd.ExtraConnections > MaxExtraConnections)
        {
            throw DirectoryErrors.InvalidArgument($"device {device} asks for {nbd.ExtraConnections} extra connections");
        }
        return nbd;
    }
}
