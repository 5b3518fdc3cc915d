using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Provider;

/// <summary>
/// A BackupVm volume that passed <see cref="BackupVmValidation"/>. Exactly one of <see cref="Nbd"/> (NBD mechanism)
/// and <see cref="File"/> (FILE_HANDLE mechanism) is set.
/// </summary>
public sealed record ValidatedVmVolume(string Device, long SizeBytes, BitmapMode BitmapMode, NbdVolumeSource? Nbd, FileVolumeSource? File)
{
    /// <summary>REUSE: only the dirty ranges are read, the rest comes from the previous backup.</summary>
    public bool IsIncremental => BitmapMode == BitmapMode.Reuse;

    /// <summary>The mode as providers record it: none, new or reuse.</summary>
    public string ModeName => BitmapMode switch
    {
        BitmapMode.None => "none",
        BitmapMode.New => "new",
        _ => "reuse",
    };
}
