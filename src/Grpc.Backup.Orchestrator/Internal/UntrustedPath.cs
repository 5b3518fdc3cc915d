using System.Net.Sockets;
using System.Runtime.InteropServices;
using Grpc.Backup.Orchestrator.Internal.Interop;
using Grpc.Backup.Transport;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Opens what a provider names by path (a restore source file, an NBD socket) without trusting the path: the last
/// component is opened with O_PATH|O_NOFOLLOW (no data access, no device open, no FIFO wait, no symlink), judged by
/// statx on that fd, and only then reopened for reading through /proc/self/fd (non-blocking, no controlling tty), or
/// connected through /proc/self/fd, so the object checked is the object used.
/// </summary>
internal static class UntrustedPath
{
    /// <summary>
    /// A read-only handle to the regular file (or, with <paramref name="allowBlockDevice"/>, block device) at
    /// <paramref name="path"/>, which must belong to <paramref name="providerUid"/> (any owner when the provider runs as root).
    /// </summary>
    public static SafeFileHandle OpenFile(string what, string path, uint providerUid, bool allowBlockDevice)
    {
        using SafeFileHandle pathHandle = OpenPath(what, path, directoryFd: null);
        PassedFileInfo info = PassedFileInfo.Get(pathHandle);
        if (info.Kind == FdKind.BlockDevice && !allowBlockDevice)
        {
            throw new BackupException($"{what}: '{path}' is a block device; the host does not read devices a provider names by path");
        }
        if (info.Kind is not (FdKind.File or FdKind.BlockDevice))
        {
            throw new BackupException($"{what}: '{path}' is not a regular file{(allowBlockDevice ? " or block device" : "")} (a symlink, FIFO, socket or directory is refused)");
        }
        CheckOwner(what, path, info, providerUid);
        var handle = new SafeFileHandle(Libc.open($"/proc/self/fd/{pathHandle.DangerousGetHandle()}",
            Libc.ORdonly | Libc.ONonblock | Libc.ONoctty | Libc.OCloexec, 0), ownsHandle: true);
        if (handle.IsInvalid)
        {
            throw new BackupException($"{what}: cannot open '{path}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        return handle;
    }

    /// <summary>
    /// A socket connected to the Unix socket at <paramref name="path"/>, which must be the provider's: the socket and
    /// the directory holding it belong to <paramref name="providerUid"/> and that directory is writable by no one
    /// else (the provider's runtime directory, not /tmp or another user's), reached with no symlink on the way, and
    /// under <paramref name="runtimeDirectory"/> when the host knows it.
    /// </summary>
    public static async Task<Socket> ConnectProviderSocketAsync(string what, string path, uint providerUid, string? runtimeDirectory,
        CancellationToken cancellationToken)
    {
        if (!System.IO.Path.IsPathFullyQualified(path) || System.IO.Path.GetFullPath(path) != path)
        {
            throw new BackupException($"{what}: the NBD socket '{path}' is not a normalized absolute path");
        }
        string directory = System.IO.Path.GetDirectoryName(path)!;
        if (runtimeDirectory is not null
            && !(directory + "/").StartsWith(System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(runtimeDirectory)) + "/", StringComparison.Ordinal))
        {
            throw new BackupException($"{what}: the NBD socket '{path}' is outside the provider's runtime directory '{runtimeDirectory}'");
        }
        using SafeFileHandle root = new(Libc.open("/", Libc.OPath | Libc.ODirectory | Libc.OCloexec, 0), ownsHandle: true);
        using SafeFileHandle directoryHandle = OpenPath(what, directory.TrimStart('/'), root, Libc.ODirectory);
        PassedFileInfo directoryInfo = PassedFileInfo.Get(directoryHandle);
        UnixFileMode mode = File.GetUnixFileMode($"/proc/self/fd/{directoryHandle.DangerousGetHandle()}");
        if (directoryInfo.OwnerUid != providerUid || (mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            throw new BackupException($"{what}: the NBD socket '{path}' is not in the provider's own runtime directory "
                + $"('{directory}' belongs to uid {directoryInfo.OwnerUid}, mode {Convert.ToString((int)mode, 8)}; the provider is uid {providerUid})");
        }
        using SafeFileHandle socketHandle = OpenPath(what, System.IO.Path.GetFileName(path), directoryHandle);
        PassedFileInfo info = PassedFileInfo.Get(socketHandle);
        if (info.Kind != FdKind.NbdSocket)
        {
            throw new BackupException($"{what}: '{path}' is not a Unix socket");
        }
        if (info.OwnerUid != providerUid)
        {
            throw new BackupException($"{what}: the NBD socket '{path}' belongs to uid {info.OwnerUid}, not to the provider (uid {providerUid})");
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint($"/proc/self/fd/{socketHandle.DangerousGetHandle()}"), cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void CheckOwner(string what, string path, PassedFileInfo info, uint providerUid)
    {
        // A root provider may hand over any file it could read anyway; any other provider only its own.
        if (providerUid != 0 && info.OwnerUid != providerUid)
        {
            throw new BackupException($"{what}: '{path}' belongs to uid {info.OwnerUid}, not to the provider (uid {providerUid})");
        }
    }

    /// <summary>An O_PATH handle of <paramref name="path"/>: absolute with no final symlink, or under <paramref name="directoryFd"/> with none anywhere.</summary>
    private static SafeFileHandle OpenPath(string what, string path, SafeFileHandle? directoryFd, int extraFlags = 0)
    {
        int fd;
        if (directoryFd is null)
        {
            if (!System.IO.Path.IsPathFullyQualified(path))
            {
                throw new BackupException($"{what}: the provider's path '{path}' is not absolute");
            }
            fd = Libc.open(path, Libc.OPath | Libc.ONofollow | Libc.OCloexec | extraFlags, 0);
        }
        else
        {
            fd = Libc.openat2((int)directoryFd.DangerousGetHandle(), path.Length == 0 ? "." : path,
                Libc.OPath | Libc.ONofollow | Libc.OCloexec | extraFlags, 0, Libc.ResolveBeneath | Libc.ResolveNoSymlinks);
        }
        if (fd < 0)
        {
            throw new BackupException($"{what}: cannot open '{path}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }
}
