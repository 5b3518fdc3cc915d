namespace Grpc.Backup.Orchestrator;

/// <summary>
/// One file system the appliance found on a disk of a browsed archive.
/// </summary>
/// <param name="Name">Its name among the disk's file systems: "" for a file system on the whole disk, <c>partN</c>,
/// <c>lvm-VG-LV</c>; with several on one disk, a path's first component names one.</param>
/// <param name="Type">The type the appliance detected (ext4, xfs, vfat, unknown, ...).</param>
/// <param name="Error">Why it cannot be read (the appliance's one-line error), or null.</param>
public sealed record VmFileSystem(string ArchiveName, string DeviceName, string Name, string Type, string? Error);
