using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Grpc.Backup.Orchestrator.Internal.Interop;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// The one per-guest lock that every process backing up a guest takes, grpc-backupd and the CLI's direct mode alike:
/// an exclusive <c>flock</c> on <c>DIR/guest-ID.lock</c>, held for the whole backup, so two backups of one guest never
/// overlap. The kernel drops it when its holder dies, so a held lock always has a live owner; the file names that
/// owner's pid for the refusal message. Crash recovery takes it too: it touches a guest's leftovers only while no
/// live process holds the guest.
/// </summary>
public sealed class GuestLock : IDisposable
{
    /// <summary>The default directory, shared by the packaged service and the CLI.</summary>
    public const string DefaultDirectory = "/run/grpc-backup/locks";

    private readonly SafeFileHandle _handle;

    private GuestLock(SafeFileHandle handle, string path)
    {
        _handle = handle;
        Path = path;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>Takes the lock without waiting.</summary>
    /// <exception cref="GuestLockedException">A live process holds it; the message names the guest, that process and the file.</exception>
    public static GuestLock Acquire(string directory, string guestId)
        => TryAcquire(directory, guestId, out int holder) ?? throw new GuestLockedException(
            $"guest {guestId} is being backed up by another process{(holder > 0 ? $" (pid {holder})" : "")}; lock {LockPath(directory, guestId)}");

    /// <summary>Takes the lock without waiting, or returns null when a live process holds it (its pid in <paramref name="holder"/>, 0 if unknown).</summary>
    public static GuestLock? TryAcquire(string directory, string guestId, out int holder)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string path = LockPath(directory, guestId);
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // Never truncated before the lock is ours: the holder's pid must stay readable for the refusal.
        SafeFileHandle handle = Libc.OpenHandle(path, Libc.ORdwr | Libc.OCreat | Libc.OCloexec | Libc.ONofollow, 0x180 /* 0600 */);
        if (handle.IsInvalid)
        {
            int error = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw new IOException($"open {path}: {Marshal.GetPInvokeErrorMessage(error)}");
        }
        try
        {
            while (Libc.Flock(handle, Libc.LockExclusive | Libc.LockNonBlocking) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.Eintr)
                {
                    continue;
                }
                if (errno != Libc.Ewouldblock)
                {
                    throw new IOException($"flock {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
                }
                holder = ReadPid(handle);
                handle.Dispose();
                return null;
            }
            byte[] pid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
            RandomAccess.SetLength(handle, 0);
            RandomAccess.Write(handle, pid, 0);
            holder = Environment.ProcessId;
            return new GuestLock(handle, path);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Releases the lock (closing the file drops the flock). The file stays: unlinking it would let two
    /// processes lock two different inodes under one name.</summary>
    public void Dispose() => _handle.Dispose();

    private static string LockPath(string directory, string guestId)
    {
        // Inventory ids are numeric; anything that could leave the directory is refused outright.
        if (string.IsNullOrEmpty(guestId) || guestId.StartsWith('.') || !guestId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ArgumentException($"'{guestId}' cannot name a lock file", nameof(guestId));
        }
        return System.IO.Path.Combine(directory, $"guest-{guestId}.lock");
    }

    private static int ReadPid(SafeFileHandle handle)
    {
        byte[] buffer = new byte[16];
        int read = RandomAccess.Read(handle, buffer, 0);
        return int.TryParse(Encoding.ASCII.GetString(buffer, 0, read).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid : 0;
    }
}
