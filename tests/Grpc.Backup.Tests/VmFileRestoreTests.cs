using System.Diagnostics;
using System.Formats.Tar;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// Single files from VM archives (issue 18) through one libguestfs appliance for the whole class (its boot is about a
/// minute under TCG): a GPT disk with two ext4 partitions made on the host with <c>mkfs.ext4 -d</c> (never mounted),
/// restored by one provider as a file (qemu-nbd, then the guard) and a whole-disk ext4 with its superblock's magic
/// zeroed by another as its own NBD export (nbdkit, then the guard). Listings and extracted bytes are compared with the
/// source tree; a symlink to /etc/shadow stays a link; the host kernel mounts nothing.
/// </summary>
public sealed class VmFileRestoreTests(VmFileRestoreTests.Appliance appliance, ITestOutputHelper output) : IClassFixture<VmFileRestoreTests.Appliance>
{
    private const string Good = "100/good";
    private const string Corrupt = "101/corrupt";

    [Fact]
    public async Task A_partitioned_disk_lists_its_file_systems_and_directories_as_the_source_holds_them()
    {
        var clock = Stopwatch.StartNew();
        Assert.Equal(["part1:ext4", "part2:ext4"], appliance.Browser.FileSystems.Where(f => f.ArchiveName == Good).Select(f => $"{f.Name}:{f.Type}"));

        IReadOnlyList<ArchiveEntry> root = await appliance.Browser.ListAsync(Good, null, "/", CancellationToken.None);
        Assert.Equal(["part1", "part2"], root.Select(e => e.Path));

        IReadOnlyList<ArchiveEntry> top = await appliance.Browser.ListAsync(Good, null, "/part1", CancellationToken.None);
        Assert.Equal(["part1/dir", "part1/hello.txt", "part1/linkdir", "part1/lost+found", "part1/shadow-link", "part1/we\nird"], top.Select(e => e.Path));
        ArchiveEntry link = top.Single(e => e.Path == "part1/shadow-link");
        Assert.Equal((ArchiveEntryKind.Symlink, "/etc/shadow"), (link.Kind, link.LinkTarget));
        ArchiveEntry hello = top.Single(e => e.Path == "part1/hello.txt");
        Assert.Equal((ArchiveEntryKind.File, 6L, (UnixFileMode)0b110_100_000, 1234, 5678), (hello.Kind, hello.Size, hello.Mode, hello.Uid, hello.Gid));
        Assert.Equal(new FileInfo(Path.Combine(appliance.PartOne, "hello.txt")).LastWriteTimeUtc.Ticks / TimeSpan.TicksPerSecond,
            hello.ModificationTime.UtcTicks / TimeSpan.TicksPerSecond);

        IReadOnlyList<ArchiveEntry> sub = await appliance.Browser.ListAsync(Good, "drive-scsi0", "part1/dir/sub", CancellationToken.None);
        Assert.Equal([("part1/dir/sub/data.bin", 4L << 20), ("part1/dir/sub/note", 5L)], sub.Select(e => (e.Path, e.Size)));
        Assert.Equal(["part2/b.txt", "part2/lost+found"], (await appliance.Browser.ListAsync(Good, null, "part2", CancellationToken.None)).Select(e => e.Path));

        await Assert.ThrowsAsync<ArchivePathNotFoundException>(() => appliance.Browser.ListAsync(Good, null, "part1/no-such", CancellationToken.None));
        var through = await Assert.ThrowsAsync<BackupException>(() => appliance.Browser.ListAsync(Good, null, "part1/linkdir/etc", CancellationToken.None));
        Assert.Contains("symlink", through.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<BackupException>(() => appliance.Browser.ListAsync(Good, null, "part1/../part2", CancellationToken.None));
        output.WriteLine($"listings: {clock.Elapsed.TotalSeconds:F1} s (appliance boot in the fixture: {appliance.BootSeconds:F1} s)");
    }

    [Fact]
    public async Task Extracted_files_equal_the_source_and_a_link_to_etc_shadow_is_not_followed()
    {
        var clock = Stopwatch.StartNew();
        // Reachable by the user namespace's tar (0755); the target's own parent is root's 0700, as a restore requires.
        using var work = new TempDirectory((UnixFileMode)0b111_101_101);
        string parent = work.File("private");
        Directory.CreateDirectory(parent);
        File.SetUnixFileMode(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string target = Path.Combine(parent, "files");

        ContainerRestoreResult extracted = await appliance.Browser.ExtractAsync(Good, null, new ContainerRestoreOptions
        {
            IdMap = IdMap.CreateDefault(),
            TargetDirectory = target,
            Paths = ["part1/dir", "/part1/hello.txt", "part1/shadow-link"],
        }, xattrs: true, CancellationToken.None);

        string[] files = [.. Directory.EnumerateFileSystemEntries(target, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(target, f)).Order(StringComparer.Ordinal)];
        Assert.Equal(["part1", "part1/dir", "part1/dir/sub", "part1/dir/sub/data.bin", "part1/dir/sub/note", "part1/hello.txt", "part1/shadow-link"], files);
        foreach (string file in (string[])["dir/sub/data.bin", "dir/sub/note", "hello.txt"])
        {
            Assert.Equal(Checksums.Sha256File(Path.Combine(appliance.PartOne, file)), Checksums.Sha256File(Path.Combine(target, "part1", file)));
        }
        var shadow = new FileInfo(Path.Combine(target, "part1", "shadow-link"));
        Assert.Equal("/etc/shadow", shadow.LinkTarget);
        // Owners land in the user namespace's range (guest 1234 is host 101234), as a container's files do.
        var (_, owner, _) = await ChildProcess.RunAsync("stat", ["-c", "%u", Path.Combine(target, "part1", "hello.txt")]);
        Assert.Equal("101234", owner.Trim());

        // The same selection as a tar: the link is a link with no data, the file's bytes are the source's.
        using var tar = new MemoryStream();
        await appliance.Browser.WriteTarAsync(Good, null, ["part1/shadow-link", "part1/dir/sub/note"], tar, new TarValidationOptions(), xattrs: false, CancellationToken.None);
        tar.Position = 0;
        var members = new Dictionary<string, (TarEntryType, string, string)>();
        using (var reader = new TarReader(tar))
        {
            while (reader.GetNextEntry(copyData: true) is { } entry)
            {
                members[entry.Name] = (entry.EntryType, entry.LinkName, entry.DataStream is null ? "" : new StreamReader(entry.DataStream).ReadToEnd());
            }
        }
        Assert.Equal((TarEntryType.SymbolicLink, "/etc/shadow", ""), members["part1/shadow-link"]);
        Assert.Equal("note\n", members["part1/dir/sub/note"].Item3);
        output.WriteLine($"extraction and tar: {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task A_corrupted_superblock_is_one_clear_line_and_the_host_kernel_mounted_nothing()
    {
        VmFileSystem corrupt = Assert.Single(appliance.Browser.FileSystems, f => f.ArchiveName == Corrupt);
        Assert.NotNull(corrupt.Error);
        var error = await Assert.ThrowsAsync<BackupException>(() => appliance.Browser.ListAsync(Corrupt, null, "/", CancellationToken.None));
        Assert.DoesNotContain('\n', error.Message);
        Assert.StartsWith("101/corrupt drive-scsi0: ", error.Message, StringComparison.Ordinal);
        output.WriteLine(error.Message);

        // Whatever other tests mount meanwhile, no guest file system reached the host's mount table.
        string[] added = [.. File.ReadAllLines("/proc/self/mountinfo").Except(appliance.MountsBefore)];
        Assert.DoesNotContain(added, line => line.Contains(" - ext", StringComparison.Ordinal) || line.Contains("/dev/nbd", StringComparison.Ordinal));
    }

    /// <summary>The two archives, their providers and the one appliance of the class.</summary>
    public sealed class Appliance : IAsyncLifetime, IDisposable
    {
        private readonly TempDirectory _work = new();
        private InProcessProvider? _goodProvider;
        private InProcessProvider? _corruptProvider;
        private ProviderNbdkit? _nbdkit;
        private ProviderConnection? _good;
        private ProviderConnection? _corrupt;

        public VmFileBrowser Browser { get; private set; } = null!;

        public string PartOne => _work.File("part1");

        public string[] MountsBefore { get; private set; } = [];

        public double BootSeconds { get; private set; }

        public async Task InitializeAsync()
        {
            MountsBefore = File.ReadAllLines("/proc/self/mountinfo");
            string partTwo = _work.File("part2");
            Directory.CreateDirectory(Path.Combine(PartOne, "dir", "sub"));
            Directory.CreateDirectory(partTwo);
            await File.WriteAllTextAsync(Path.Combine(PartOne, "hello.txt"), "hello\n");
            File.SetUnixFileMode(Path.Combine(PartOne, "hello.txt"), (UnixFileMode)0b110_100_000);
            await RunAsync("chown", "1234:5678", Path.Combine(PartOne, "hello.txt"));
            byte[] data = new byte[4 << 20];
            Random.Shared.NextBytes(data);
            await File.WriteAllBytesAsync(Path.Combine(PartOne, "dir", "sub", "data.bin"), data);
            await File.WriteAllTextAsync(Path.Combine(PartOne, "dir", "sub", "note"), "note\n");
            await File.WriteAllTextAsync(Path.Combine(PartOne, "we\nird"), "x");
            File.CreateSymbolicLink(Path.Combine(PartOne, "shadow-link"), "/etc/shadow");
            File.CreateSymbolicLink(Path.Combine(PartOne, "linkdir"), "/");
            await File.WriteAllTextAsync(Path.Combine(partTwo, "b.txt"), "b\n");

            // GPT: part1 at 1 MiB, part2 at 42 MiB, 40 MiB each; the file systems are written first, the table after.
            string good = _work.File("good.raw");
            await RunAsync("truncate", "-s", "96M", good);
            await RunAsync("mkfs.ext4", "-q", "-F", "-d", PartOne, "-E", "offset=" + (1 << 20), good, "40M");
            await RunAsync("mkfs.ext4", "-q", "-F", "-d", partTwo, "-E", "offset=" + (42 << 20), good, "40M");
            await RunAsync("sgdisk", "-n", "1:2048:+40M", "-n", "2:86016:+40M", good);

            string corrupt = _work.File("corrupt.raw");
            await RunAsync("truncate", "-s", "32M", corrupt);
            await RunAsync("mkfs.ext4", "-q", "-F", "-d", partTwo, corrupt);
            await using (var file = new FileStream(corrupt, FileMode.Open, FileAccess.Write))
            {
                file.Position = 1024 + 56;
                file.Write([0, 0]);
            }

            _goodProvider = await InProcessProvider.StartAsync();
            _goodProvider.Restore.VolumeFile = good;
            _corruptProvider = await InProcessProvider.StartAsync();
            _nbdkit = await ProviderNbdkit.StartAsync(_work, "-r", "file", "file=" + corrupt);
            _corruptProvider.Restore.DeclaredSize = 32UL << 20;
            _corruptProvider.Restore.SourceNbdUri = $"nbd+unix:///?socket={_nbdkit.SocketPath}";
            _good = await ProviderConnection.ConnectAsync(_goodProvider.Endpoint);
            _corrupt = await ProviderConnection.ConnectAsync(_corruptProvider.Endpoint);
            var clock = Stopwatch.StartNew();
            Browser = await VmFileBrowser.OpenAsync([new VmFileSource(_good, Good), new VmFileSource(_corrupt, Corrupt)], NullLogger.Instance, CancellationToken.None);
            BootSeconds = clock.Elapsed.TotalSeconds;
        }

        public async Task DisposeAsync()
        {
            if (Browser is not null)
            {
                await Browser.DisposeAsync();
            }
            foreach (IAsyncDisposable? item in (IAsyncDisposable?[])[_good, _corrupt, _nbdkit, _goodProvider, _corruptProvider])
            {
                if (item is not null)
                {
                    await item.DisposeAsync();
                }
            }
        }

        public void Dispose() => _work.Dispose();

        private static async Task RunAsync(string tool, params string[] arguments)
        {
            var (code, _, stderr) = await ChildProcess.RunAsync(tool, arguments);
            Assert.True(code == 0, $"{tool} {string.Join(' ', arguments)}: {stderr}");
        }
    }
}
