using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal.Interop;

/// <summary>
/// open(2) and flock(2), which .NET has no explicit API for (FileShare.None takes one implicitly, but silently not at all when
/// file locking is disabled by configuration). Constants are the Linux values.
/// </summary>
internal static partial class Libc
{
    internal const int LockExclusive = 2;
    internal const int LockNonBlocking = 4;
    internal const int Ewouldblock = 11;
    internal const int Eintr = 4;

    internal const int OReadWrite = 2;
    internal const int OCreate = 0x40;
    internal const int OCloexec = 0x80000;
    internal const int ONofollow = 0x20000;

    /// <summary>open(2): File.OpenHandle would take its own shared flock, which conflicts with the exclusive one.</summary>
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SafeFileHandle Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    internal static partial int Flock(SafeFileHandle fd, int operation);
}
