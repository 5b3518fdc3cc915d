using System.Net.Sockets;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// A provider names restore sources by path or NBD URI, declares sizes, and the target may have been prepared by
/// someone else: each is an attack on root. Each case ends with a clear error or a safe result, nothing outside the
/// target written or deleted, and nothing allocated beyond what was written.
/// </summary>
public sealed class HostileRestoreTargetTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_FIFO_path_source_is_refused_without_blocking()
    {
        using var work = new TempDirectory();
        string fifo = work.File("source.fifo");
        Assert.Equal(0, (await ChildProcess.RunAsync("mkfifo", [fifo])).ExitCode);
        var error = await RestoreFailsAsync(work, restore => { restore.VolumeFile = MakeFile(work, 1 << 20); restore.SourcePath = fifo; });
        Assert.Contains("not a regular file", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(work.File("target")));
    }

    [Fact]
    public async Task A_device_path_source_is_refused_unless_allowed()
    {
        using var work = new TempDirectory();
        string device = Directory.GetFiles("/dev", "loop*").First(d => new FileInfo(d).Name.Length > 4 && char.IsDigit(d[^1]));
        var error = await RestoreFailsAsync(work, restore => { restore.VolumeFile = MakeFile(work, 1 << 20); restore.SourcePath = device; });
        Assert.Contains("is a block device", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_symlinked_path_source_is_refused()
    {
        using var work = new TempDirectory();
        string link = work.File("link.raw");
        File.CreateSymbolicLink(link, "/etc/hostname");
        var error = await RestoreFailsAsync(work, restore => { restore.VolumeFile = MakeFile(work, 1 << 20); restore.SourcePath = link; });
        Assert.Contains("not a regular file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_NBD_URI_outside_the_providers_own_directory_is_refused_and_never_connected()
    {
        using var work = new TempDirectory();
        // A world-writable directory (as /tmp) holding someone's NBD socket: root must not connect to it for the provider.
        string shared = Directory.CreateDirectory(work.File("shared")).FullName;
        File.SetUnixFileMode(shared, (UnixFileMode)0b111_111_111);
        string socketPath = Path.Combine(shared, "nbd.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        listener.Listen();
        var error = await RestoreFailsAsync(work, restore =>
        {
            restore.VolumeFile = MakeFile(work, 1 << 20);
            restore.SourceNbdUri = $"nbd+unix:///x?socket={socketPath}";
        });
        Assert.Contains("not in the provider's own runtime directory", error.Message, StringComparison.Ordinal);
        listener.Blocking = false;
        Assert.Throws<SocketException>(() => listener.Accept());
    }

    [Fact]
    public async Task A_symlinked_target_is_refused_and_what_it_points_at_is_untouched()
    {
        using var work = new TempDirectory();
        string elsewhere = Directory.CreateDirectory(work.File("elsewhere")).FullName;
        File.CreateSymbolicLink(work.File("target"), elsewhere);
        var error = await RestoreFailsAsync(work, restore => restore.VolumeFile = MakeFile(work, 1 << 20));
        Assert.Contains("is not a directory (a symlink or a file)", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(elsewhere));
        Assert.NotNull(new FileInfo(work.File("target")).LinkTarget);
    }

    [Fact]
    public async Task An_existing_target_file_or_non_empty_directory_is_refused_and_kept()
    {
        using var work = new TempDirectory();
        await File.WriteAllTextAsync(work.File("target"), "precious");
        var error = await RestoreFailsAsync(work, restore => restore.VolumeFile = MakeFile(work, 1 << 20));
        Assert.Contains("is not a directory", error.Message, StringComparison.Ordinal);
        Assert.Equal("precious", await File.ReadAllTextAsync(work.File("target")));

        using var work2 = new TempDirectory();
        Directory.CreateDirectory(work2.File("target"));
        string kept = work2.File("target/drive-scsi0.raw");
        await File.WriteAllTextAsync(kept, "not the restore's");
        error = await RestoreFailsAsync(work2, restore => restore.VolumeFile = MakeFile(work2, 1 << 20));
        Assert.Contains("not empty", error.Message, StringComparison.Ordinal);
        Assert.Equal("not the restore's", await File.ReadAllTextAsync(kept));
    }

    [Fact]
    public async Task A_planted_guest_conf_symlink_in_an_empty_target_is_never_written_through()
    {
        // The only race left is root's own; an empty root-owned target is taken, and a link planted in it later is
        // refused by O_EXCL, never followed. Here the link exists from the start, so the target is not empty.
        using var work = new TempDirectory();
        Directory.CreateDirectory(work.File("target"));
        string victim = work.File("victim");
        await File.WriteAllTextAsync(victim, "victim");
        File.CreateSymbolicLink(work.File("target/guest.conf"), victim);
        await RestoreFailsAsync(work, restore => restore.VolumeFile = MakeFile(work, 1 << 20));
        Assert.Equal("victim", await File.ReadAllTextAsync(victim));
        Assert.NotNull(new FileInfo(work.File("target/guest.conf")).LinkTarget);
    }

    [Fact]
    public async Task A_declared_size_beyond_the_free_space_is_refused_before_anything_is_written()
    {
        using var work = new TempDirectory();
        var error = await RestoreFailsAsync(work, restore =>
        {
            restore.VolumeFile = MakeFile(work, 1 << 20);
            restore.DeclaredSize = 1UL << 49;
        });
        Assert.Contains("bytes free", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(work.File("target")));
    }

    [Fact]
    public async Task A_mostly_empty_disk_restores_sparse_and_allocates_only_what_was_written()
    {
        using var work = new TempDirectory();
        string image = work.File("sparse.raw");
        const long size = 256L << 20;
        using (var file = File.OpenHandle(image, FileMode.CreateNew, FileAccess.Write))
        {
            RandomAccess.SetLength(file, size);
            byte[] data = new byte[64 * 1024];
            Random.Shared.NextBytes(data);
            RandomAccess.Write(file, data, 100L << 20);
        }
        await using var provider = await InProcessProvider.StartAsync();
        provider.Restore.VolumeFile = image;
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        var restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync("100/sparse", new VmRestoreOptions { TargetDirectory = work.File("target") }, CancellationToken.None)
            .WaitAsync(Bound);
        string disk = restored.Disks[ScriptedRestore.Device];
        Assert.Equal(size, new FileInfo(disk).Length);
        long blocks = long.Parse((await ChildProcess.RunAsync("stat", ["-c", "%b", disk])).Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        // 512-byte blocks: the 64 KiB written (one 4 MiB chunk at most, were it all written), never the 256 MiB declared.
        Assert.True(blocks * 512 <= 4L << 20, $"the restored disk allocates {blocks * 512} bytes");
        Assert.Equal(await File.ReadAllBytesAsync(image), await File.ReadAllBytesAsync(disk));
    }

    [Fact]
    public async Task An_NBD_source_that_stops_answering_reads_is_cancelled_by_the_inactivity_bound()
    {
        using var work = new TempDirectory();
        // The provider's own runtime directory (root-only, as the in-process provider runs as root), holding a real
        // nbdkit whose every read waits an hour: the handshake and block status answer, the data never comes.
        await using var nbdkit = await ProviderNbdkit.StartAsync(work, "--filter=delay", "pattern", "size=16M", "rdelay=3600");
        var error = await RestoreFailsAsync(work, restore =>
        {
            restore.VolumeFile = MakeFile(work, 1 << 20);
            restore.DeclaredSize = 16UL << 20;
            restore.SourceNbdUri = $"nbd+unix:///?socket={nbdkit.SocketPath}";
        }, new VmRestoreOptions
        {
            TargetDirectory = work.File("target"), ProviderRuntimeDirectory = nbdkit.RuntimeDirectory,
            ProviderInactivityTimeout = TimeSpan.FromSeconds(2),
        });
        Assert.Contains("no progress for 2 s (provider-inactivity-timeout); the restore was cancelled", error.Message,
            StringComparison.Ordinal);
        Assert.False(Directory.Exists(work.File("target")));
    }

    private static string MakeFile(TempDirectory work, int size)
    {
        string path = work.File("source-" + Guid.NewGuid().ToString("N") + ".raw");
        byte[] data = new byte[size];
        Random.Shared.NextBytes(data);
        File.WriteAllBytes(path, data);
        return path;
    }

    private static async Task<BackupException> RestoreFailsAsync(TempDirectory work, Action<ScriptedRestore> configure,
        VmRestoreOptions? options = null)
    {
        await using var provider = await InProcessProvider.StartAsync();
        configure(provider.Restore);
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        var error = await Assert.ThrowsAsync<BackupException>(() => new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync("100/hostile", options ?? new VmRestoreOptions { TargetDirectory = work.File("target") }, CancellationToken.None).WaitAsync(Bound));
        // Whatever was asked of the provider was cleaned up.
        Assert.Equal(provider.Restore.VolumeCleanups > 0 ? 1 : provider.Restore.VmCleanups, provider.Restore.VmCleanups);
        return error;
    }
}
