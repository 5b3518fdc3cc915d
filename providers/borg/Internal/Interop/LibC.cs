using System.Runtime.InteropServices;

namespace Grpc.Backup.Providers.Borg.Internal.Interop;

/// <summary>The libc calls .NET has no managed API for: signals to a child, and hole punching in a passed file.</summary>
internal static partial class LibC
{
    public const int SigTerm = 15;
    public const int FallocFlKeepSize = 0x01;
    public const int FallocFlPunchHole = 0x02;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);
}
