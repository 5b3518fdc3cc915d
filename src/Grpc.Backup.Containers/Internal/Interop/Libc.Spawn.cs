using System.Runtime.InteropServices;

namespace Grpc.Backup.Containers.Internal.Interop;

/// <summary>
/// posix_spawn and waitpid: the only way for .NET to start a child with an inherited fd at a chosen number (the
/// provider's worker gets its sideband connection as fd 3), because <see cref="System.Diagnostics.Process"/> passes
/// only stdin, stdout and stderr. glibc layouts on 64-bit Linux: posix_spawn_file_actions_t is 80 bytes,
/// posix_spawnattr_t 336 and sigset_t 128; callers allocate generously and zeroed.
/// </summary>
internal static unsafe partial class Libc
{
    internal const int SpawnStructureBytes = 512;
    internal const short PosixSpawnSetSigDefault = 0x04;
    internal const short PosixSpawnSetSigMask = 0x08;
    internal const int SigKill = 9;
    internal const int SigPipe = 13;
    internal const int ORdonly = 0;
    internal const int FDupfdCloexec = 1030;
    internal const int Echild = 10;

    [LibraryImport(LibraryName)]
    internal static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport(LibraryName)]
    internal static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport(LibraryName)]
    internal static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport(LibraryName, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int posix_spawn_file_actions_addopen(void* actions, int fd, string path, int flags, uint mode);

    [LibraryImport(LibraryName)]
    internal static partial int posix_spawnattr_init(void* attributes);

    [LibraryImport(LibraryName)]
    internal static partial int posix_spawnattr_destroy(void* attributes);

    [LibraryImport(LibraryName)]
    internal static partial int posix_spawnattr_setflags(void* attributes, short flags);

    [LibraryImport(LibraryName)]
    internal static partial int posix_spawnattr_setsigmask(void* attributes, void* signals);

    [LibraryImport(LibraryName)]
    internal static partial int posix_spawnattr_setsigdefault(void* attributes, void* signals);

    [LibraryImport(LibraryName)]
    internal static partial int sigemptyset(void* signals);

    [LibraryImport(LibraryName)]
    internal static partial int sigaddset(void* signals, int signal);

    [LibraryImport(LibraryName, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int posix_spawnp(int* pid, string file, void* actions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int waitpid(int pid, int* status, int options);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int kill(int pid, int signal);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int close(int fd);
}
