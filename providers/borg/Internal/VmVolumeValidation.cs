using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>Checks BackupVmStart completely before anything is claimed or started: names, sizes, modes, sources.</summary>
internal static class VmVolumeValidation
{
    private const uint MaxExtraConnections = 63;

    public static void Validate(BackupVmStart start)
    {
        if (start.Volumes.Count == 0)
        {
            throw BorgErrors.InvalidArgument("BackupVmStart has no volumes");
        }
        var devices = new HashSet<string>(StringComparer.Ordinal);
        foreach (VmVolume volume in start.Volumes)
        {
            string device = volume.DeviceName;
            if (!ProtocolNames.IsValidDeviceName(device) || !devices.Add(device))
            {
                throw BorgErrors.InvalidArgument($"device name '{device}' is invalid or listed twice");
            }
            if (volume.SizeBytes == 0 || volume.SizeBytes > long.MaxValue)
            {
                throw BorgErrors.InvalidArgument($"device {device} has the invalid size {volume.SizeBytes}");
            }
            if (volume.BitmapMode is not (BitmapMode.None or BitmapMode.New or BitmapMode.Reuse))
            {
                throw BorgErrors.InvalidArgument($"device {device} has no valid bitmap_mode ({volume.BitmapMode})");
            }
            switch (volume.SourceCase)
            {
                case VmVolume.SourceOneofCase.Nbd:
                    NbdVolumeSource nbd = volume.Nbd;
                    if (nbd.Socket is null || nbd.Socket.Kind != FdKind.NbdSocket)
                    {
                        throw BorgErrors.InvalidArgument($"device {device} has no NBD socket");
                    }
                    if ((volume.BitmapMode == BitmapMode.Reuse) != !string.IsNullOrEmpty(nbd.BitmapContext))
                    {
                        throw BorgErrors.InvalidArgument($"device {device}: a bitmap_context goes with REUSE and only with it");
                    }
                    if (nbd.ExtraConnections > MaxExtraConnections || nbd.Socket.Index + (ulong)nbd.ExtraConnections > MaxExtraConnections)
                    {
                        throw BorgErrors.InvalidArgument($"device {device} asks for {nbd.ExtraConnections} extra connections");
                    }
                    break;
                case VmVolume.SourceOneofCase.File:
                    if (volume.File.File is null || volume.File.File.Kind != FdKind.File)
                    {
                        throw BorgErrors.InvalidArgument($"device {device} has no FILE fd");
                    }
                    break;
                default:
                    throw ProviderErrors.Create(StatusCode.InvalidArgument, $"device {device} has no source");
            }
        }
    }

    public static string ModeName(BitmapMode mode) => mode switch
    {
        BitmapMode.None => "none",
        BitmapMode.New => "new",
        _ => "reuse",
    };
}
