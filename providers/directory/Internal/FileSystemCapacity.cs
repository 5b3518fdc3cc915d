namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>Total, used and available bytes of the file system holding a directory (statvfs).</summary>
internal static class FileSystemCapacity
{
    public static (ulong Total, ulong Used, ulong Available) Of(string directory)
    {
        // DriveInfo on Linux runs statvfs on the path it is given, which may be any directory of the file system.
        var drive = new DriveInfo(directory);
        ulong total = (ulong)drive.TotalSize;
        ulong free = (ulong)drive.TotalFreeSpace;
        return (total, total - Math.Min(total, free), (ulong)drive.AvailableFreeSpace);
    }
}
