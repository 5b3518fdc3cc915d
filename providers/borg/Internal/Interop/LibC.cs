using System.Runtime.InteropServices;

namespace Grpc.Backup.Providers.Borg.Internal.Interop;

/// <summary>
/// The libc calls .NET has no managed API for: signals to a child, hole punching in a passed file, and a pipe's
/// capacity.
/// </summary>
internal static partial class LibC
{
    public const int SigTerm = 15;
    public const int FallocFlKeepSize = 0x01;
    public const int FallocFlPunchHole = 0x02;
    public const int FSetPipeSize = 1031;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);
}
