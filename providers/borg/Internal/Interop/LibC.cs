using System.Runtime.InteropServices;

namespace Grpc.Backup.Providers.Borg.Internal.Interop;

/// <summary>
/// The libc calls .NET has no managed API for: signals to a child and a pipe's capacity.
/// </summary>
internal static partial class LibC
{
    public const int SigTerm = 15;
    public const int FSetPipeSize = 1031;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, int argument);
}
