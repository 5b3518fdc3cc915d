using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Provider;

/// <summary>
/// Checks BackupVmStart completely before anything is claimed, created or read: device names (valid, unique), sizes,
/// bitmap modes, and each volume's one source (an NBD socket with a bitmap context exactly for REUSE, or a file).
/// Every failure is INVALID_ARGUMENT.
/// </summary>
public static class BackupVmValidation
{
    /// <summary>More extra connections than this make no sense (a transfer carries at most 64 fds).</summary>
    public const uint MaxExtraConnections = 63;

    public static IReadOnlyList<ValidatedVmVolume> Validate(BackupVmStart start)
    {
        ArgumentNullException.ThrowIfNull(start);
        if (start.Volumes.Count == 0)
        {
            throw Invalid("BackupVmStart has no volumes");
        }
        var devices = new HashSet<string>(StringComparer.Ordinal);
        var volumes = new List<ValidatedVmVolume>(start.Volumes.Count);
        foreach (VmVolume volume in start.Volumes)
        {
            string device = volume.DeviceName;
            if (!DeviceName.IsValid(device))
            {
                throw Invalid($"device name '{device}' does not match [A-Za-z0-9._+=-]{{1,128}}");
            }
            if (!devices.Add(device))
            {
                throw Invalid($"device {device} is listed twice");
            }
            if (volume.SizeBytes == 0 || volume.SizeBytes > long.MaxValue)
            {
                throw Invalid($"device {device} has the invalid size {volume.SizeBytes}");
            }
            if (volume.BitmapMode is not (BitmapMode.None or BitmapMode.New or BitmapMode.Reuse))
            {
                throw Invalid($"device {device} has no valid bitmap_mode ({volume.BitmapMode})");
            }
            switch (volume.SourceCase)
            {
                case VmVolume.SourceOneofCase.Nbd:
                    volumes.Add(new ValidatedVmVolume(device, (long)volume.SizeBytes, volume.BitmapMode, ValidateNbd(device, volume), null));
                    break;
                case VmVolume.SourceOneofCase.File:
                    if (volume.File.File is not { Kind: FdKind.File })
                    {
                        throw Invalid($"device {device}: the file source is missing or not declared FD_KIND_FILE");
                    }
                    volumes.Add(new ValidatedVmVolume(device, (long)volume.SizeBytes, volume.BitmapMode, null, volume.File));
                    break;
                default:
                    throw Invalid($"device {device} has no source");
            }
        }
        return volumes;
    }

    private static NbdVolumeSource ValidateNbd(string device, VmVolume volume)
    {
        NbdVolumeSource nbd = volume.Nbd;
        if (nbd.Socket is null)
        {
            throw Invalid($"device {device} has no NBD socket");
        }
        if (nbd.Socket.Kind != FdKind.NbdSocket)
        {
            throw Invalid($"device {device}: the NBD socket is declared as {nbd.Socket.Kind}");
        }
        if (volume.BitmapMode == BitmapMode.Reuse && string.IsNullOrEmpty(nbd.BitmapContext))
        {
            throw Invalid($"device {device} is REUSE but names no bitmap_context");
        }
        if (volume.BitmapMode != BitmapMode.Reuse && !string.IsNullOrEmpty(nbd.BitmapContext))
        {
            throw Invalid($"device {device} names a bitmap_context but its bitmap_mode is {volume.BitmapMode}");
        }
        if (nbd.ExtraConnections > MaxExtraConnections || nbd.Socket.Index + (ulong)nbd.ExtraConnections > MaxExtraConnections)
        {
            throw Invalid($"device {device} asks for {nbd.ExtraConnections} extra connections");
        }
        return nbd;
    }

    private static RpcException Invalid(string message) => ProviderErrors.Create(StatusCode.InvalidArgument, message);
}
