namespace Grpc.Backup.Orchestrator.Inventory;

/// <summary>
/// One disk of a VM. In the running QEMU the disk is the format node <see cref="FormatNode"/> under the thin filter
/// node <see cref="FilterNode"/>, which the host reopens onto a copy-before-write node for a backup.
/// </summary>
/// <param name="DeviceName">The device name used in the protocol, e.g. <c>drive-virtio0</c>.</param>
/// <param name="ImagePath">The image file, used when the VM is stopped and for restore targets.</param>
/// <param name="Format">raw or qcow2.</param>
/// <param name="FormatNode">The QEMU node name of the image's format layer.</param>
/// <param name="FilterNode">The QEMU node name of the throttle filter above it.</param>
/// <param name="ThrottleGroup">The throttle group of the filter node; reopening must restate it.</param>
/// <param name="Backup">False (<c>backup=no</c>): the disk never reaches a provider.</param>
/// <param name="SizeBytes">
/// The disk's virtual size (<c>size=</c>, bytes or with a K/M/G/T suffix), if the config records it. A restore needs it
/// to recreate a disk excluded from backup as an empty disk of the same size.
/// </param>
public sealed record VmDisk(string DeviceName, string ImagePath, DiskFormat Format, string FormatNode, string FilterNode,
    string ThrottleGroup, bool Backup, ulong? SizeBytes = null);
