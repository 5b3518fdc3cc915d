using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal.Interop;

/// <summary>
/// flock(2), which .NET has no explicit API for (FileShare.None takes one implicitly, but silently not at all when
/// file locking is disabled by configuration). Constants are the Linux values.
/// </summary>
internal static partial class Libc
{
    internal const int LockExclusive = 2;
    internal const int LockNonBlocking = 4;
    internal const int Ewouldblock = 11;
    internal const int Eintr = 4;

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    internal static partial int Flock(SafeFileHandle fd, int operation);
}
