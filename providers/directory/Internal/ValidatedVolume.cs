using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// A BackupVm volume that passed validation, with the incremental base chosen for it (REUSE only). Exactly one of
/// <see cref="Nbd"/> (NBD mechanism) and <see cref="File"/> (FILE_HANDLE mechanism) is set.
/// </summary>
internal sealed record ValidatedVolume(string Device, long SizeBytes, BitmapMode BitmapMode, NbdVolumeSource? Nbd, FileVolumeSource? File)
{
    public bool IsIncremental => BitmapMode == BitmapMode.Reuse;

    public (ArchiveRef Archive, ManifestVolume Volume)? Base { get; set; }

    public string ModeName => BitmapMode switch
    {
        BitmapMode.None => "none",
        BitmapMode.New => "new",
        _ => "reuse",
    };
}
