namespace Grpc.Backup.Orchestrator;

/// <summary>
/// One disk of a live restore, as the VM must be started with it: <see cref="BlockdevJson"/> is the <c>-blockdev</c>
/// (or <c>blockdev-add</c>) tree of node <see cref="NodeName"/>, the local qcow2 <see cref="ImagePath"/> over the
/// guarded export of the provider's data (read-only), and the guest's device must attach that node with
/// <see cref="DeviceErrorProperties"/>, so a read the export cannot answer pauses the VM instead of failing in the guest.
/// </summary>
public sealed record LiveRestoreDisk(string DeviceName, string ImagePath, string NodeName, string BlockdevJson, long SizeBytes)
{
    /// <summary>The guest device's error policy (virtio-blk, scsi-hd): pause on read and write errors.</summary>
    public const string DeviceErrorProperties = "rerror=stop,werror=stop";
}
