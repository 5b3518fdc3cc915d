using System.Runtime.InteropServices;
using Grpc.Backup.Orchestrator.Internal.Interop;
using Grpc.Backup.Transport;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// The directory a VM restore writes into. It must not exist (it is then created, mode 0700) or be an empty directory
/// owned by root that only root can write; anything else is refused before a provider is asked for data. Every file
/// is created inside it exclusively (O_EXCL) through openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS on the
/// directory's own fd, so no symlink planted in the target redirects a write and no existing file is overwritten.
/// On failure <see cref="RemoveCreated"/> removes exactly what this restore created, nothing else.
/// </summary>
internal sealed class RestoreTarget : IDisposable
{
    private const UnixFileMode GroupOrOtherWrite = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    private readonly SafeFileHandle _directory;
    private readonly SafeFileHandle _parent;
    private readonly string _leaf;
    private readonly bool _createdDirectory;
    private readonly List<string> _created = [];

    private RestoreTarget(string path, SafeFileHandle parent, string leaf, SafeFileHandle directory, bool createdDirectory)
    {
        Path = path;
        _parent = parent;
        _leaf = leaf;
        _directory = directory;
        _createdDirectory = createdDirectory;
    }

    /// <summary>The target directory as the caller named it (what restored disk paths are reported under).</summary>
    public string Path { get; }

    /// <summary>
    /// A path that reaches <paramref name="name"/> through this process's fd of the directory (for qemu-img, which
    /// runs as root too): a rename or symlink swap of the directory's path cannot redirect it.
    /// </summary>
    public string PinnedPathOf(string name) => $"/proc/{Environment.ProcessId}/fd/{_directory.DangerousGetHandle()}/{name}";

    /// <summary>The path the caller sees for <paramref name="name"/>.</summary>
    public string PathOf(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Bytes an unprivileged writer may still allocate on the target's file system.</summary>
    public unsafe long AvailableBytes
    {
        get
        {
            Libc.StatVfs buffer;
            if (Libc.fstatvfs((int)_directory.DangerousGetHandle(), &buffer) != 0)
            {
                throw new BackupException($"cannot read the free space of '{Path}': {LastError()}");
            }
            return (long)Math.Min(buffer.BlocksAvailable * buffer.FragmentSize, long.MaxValue);
        }
    }

    /// <summary>Creates or takes over the target directory, with the rules above.</summary>
    public static RestoreTarget Open(string directory)
    {
        string full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(directory));
        string parentPath = System.IO.Path.GetDirectoryName(full) ?? throw new BackupException($"the restore target '{directory}' has no parent directory");
        string leaf = System.IO.Path.GetFileName(full);
        // The parent is the administrator's choice (it may be reached through symlinks); the target itself is not.
        Directory.CreateDirectory(parentPath);
        var parent = new SafeFileHandle(Libc.open(parentPath, Libc.OPath | Libc.ODirectory | Libc.OCloexec, 0), ownsHandle: true);
        if (parent.IsInvalid)
        {
            throw new BackupException($"cannot open the restore target's parent '{parentPath}': {LastError()}");
        }
        try
        {
            bool created = Libc.mkdirat((int)parent.DangerousGetHandle(), leaf, Convert.ToUInt32("700", 8)) == 0;
            if (!created && Marshal.GetLastPInvokeError() != Libc.Eexist)
            {
                throw new BackupException($"cannot create the restore target '{full}': {LastError()}");
            }
            int fd = Libc.openat2((int)parent.DangerousGetHandle(), leaf, Libc.OPath | Libc.ODirectory | Libc.OCloexec, 0,
                Libc.ResolveBeneath | Libc.ResolveNoSymlinks);
            if (fd < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new BackupException(errno is Libc.Eloop or Libc.Enotdir or Libc.Exdev
                    ? $"the restore target '{full}' exists and is not a directory (a symlink or a file): a restore only writes into a new or empty root-owned directory"
                    : $"cannot open the restore target '{full}': {Marshal.GetPInvokeErrorMessage(errno)}");
            }
            var handle = new SafeFileHandle(fd, ownsHandle: true);
            var target = new RestoreTarget(full, parent, leaf, handle, created);
            if (!created)
            {
                target.CheckExisting();
            }
            return target;
        }
        catch
        {
            parent.Dispose();
            throw;
        }
    }

    /// <summary>Creates <paramref name="name"/> exclusively for writing; it is removed again by <see cref="RemoveCreated"/>.</summary>
    public SafeFileHandle CreateFile(string name)
    {
        int fd = Libc.openat2((int)_directory.DangerousGetHandle(), name, Libc.ORdwr | Libc.OCreat | Libc.OExcl | Libc.ONofollow | Libc.OCloexec,
            Convert.ToUInt32("600", 8), Libc.ResolveBeneath | Libc.ResolveNoSymlinks);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new BackupException(errno == Libc.Eexist
                ? $"'{PathOf(name)}' already exists; a restore never overwrites a file"
                : $"cannot create '{PathOf(name)}': {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        lock (_created)
        {
            _created.Add(name);
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Writes <paramref name="content"/> to a new file <paramref name="name"/>.</summary>
    public async Task WriteFileAsync(string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        using SafeFileHandle handle = CreateFile(name);
        await RandomAccess.WriteAsync(handle, content, 0, cancellationToken);
    }

    /// <summary>Removes a file this restore created (an intermediate raw image once converted).</summary>
    public void Delete(string name)
    {
        lock (_created)
        {
            if (!_created.Remove(name))
            {
                throw new InvalidOperationException($"{name} was not created by this restore");
            }
        }
        _ = Libc.unlinkat((int)_directory.DangerousGetHandle(), name, 0);
    }

    /// <summary>Removes every file this restore created, and the directory if it created it; nothing else.</summary>
    public void RemoveCreated()
    {
        lock (_created)
        {
            foreach (string name in _created)
            {
                _ = Libc.unlinkat((int)_directory.DangerousGetHandle(), name, 0);
            }
            _created.Clear();
        }
        if (_createdDirectory)
        {
            // Only if empty: a file someone else put there (root, racing) is not this restore's to delete.
            _ = Libc.unlinkat((int)_parent.DangerousGetHandle(), _leaf, Libc.AtRemovedir);
        }
    }

    public void Dispose()
    {
        _directory.Dispose();
        _parent.Dispose();
    }

    private void CheckExisting()
    {
        string pinned = $"/proc/self/fd/{_directory.DangerousGetHandle()}";
        PassedFileInfo info = PassedFileInfo.Get(_directory);
        if (info.OwnerUid != 0 || (File.GetUnixFileMode(pinned) & GroupOrOtherWrite) != 0)
        {
            Dispose();
            throw new BackupException($"the restore target '{Path}' exists and is not a root-owned directory only root can write");
        }
        if (Directory.EnumerateFileSystemEntries(pinned).Any())
        {
            Dispose();
            throw new BackupException($"the restore target '{Path}' exists and is not empty; a restore only writes into a new or empty directory");
        }
    }

    private static string LastError() => Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
}
