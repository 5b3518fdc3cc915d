using System.Runtime.InteropServices;

namespace Grpc.Backup.Provider.Internal.Interop;

/// <summary>Directory fsync for <see cref="AtomicFile"/>: .NET has no managed API for it.</summary>
internal static partial class LibC
{
    public const int ORdOnly = 0;
    public const int ODirectory = 0x10000;
    public const int OCloExec = 0x80000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
