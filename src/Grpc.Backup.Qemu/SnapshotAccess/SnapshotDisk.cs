namespace Grpc.Backup.Qemu;

/// <summary>
/// One VM disk to back up. The guest must reach <paramref name="FormatNode"/> through the
/// <c>throttle</c> node <paramref name="FilterNode"/> (in group <paramref name="ThrottleGroup"/>), which
/// is where copy-before-write is inserted with <c>blockdev-reopen</c>; that works in qemu-system and
/// qemu-storage-daemon alike, without depending on qdev paths.
/// </summary>
/// <param name="DeviceName">The device's name, e.g. <c>drive-scsi0</c>; also the NBD export name.</param>
/// <param name="FormatNode">Node name of the image format layer (qcow2, raw) that holds the bitmaps.</param>
/// <param name="FilterNode">Node name of the throttle filter the guest device sits on.</param>
/// <param name="ThrottleGroup">The filter's throttle group; restated on reopen because omitted options reset.</param>
/// <param name="PersistentBitmaps">True for qcow2: bitmaps are stored in the image and survive a restart.</param>
/// <param name="Bitmap">What the provider asked for this device's bitmap.</param>
public sealed record SnapshotDisk(
    string DeviceName,
    string FormatNode,
    string FilterNode,
    string ThrottleGroup,
    bool PersistentBitmaps,
    BitmapRequest Bitmap);
