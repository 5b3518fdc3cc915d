using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Providers.Restic.Tests.Infrastructure;

/// <summary>
/// A scratch directory for a demo guest. On a loaded machine qemu-storage-daemon can miss its quit timeout and be
/// killed, which leaves its FUSE disk exports mounted (and the directory undeletable); those are lazily unmounted
/// first, so one slow teardown does not fail a test whose assertions all held.
/// </summary>
internal sealed class GuestScratch : IDisposable
{
    private readonly TempDirectory _directory = new();

    public string File(string name) => _directory.File(name);

    public TempDirectory Directory => _directory;

    public void Dispose()
    {
        string prefix = _directory.Path + "/";
        foreach (string line in System.IO.File.ReadAllLines("/proc/self/mountinfo"))
        {
            string mountPoint = line.Split(' ')[4];
            if (mountPoint.StartsWith(prefix, StringComparison.Ordinal))
            {
                using var umount = System.Diagnostics.Process.Start("umount", ["-l", mountPoint]);
                umount.WaitForExit();
            }
        }
        _directory.Dispose();
    }
}
