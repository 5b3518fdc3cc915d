using System.Globalization;
using Grpc.Backup.Containers;
using Grpc.Backup.Containers.Tests;
using HostTool = Grpc.Backup.Containers.Tests.Host;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// End to end through the directory provider, as a real process, with real user namespaces: a container defined in the
/// inventory is backed up through each mechanism (TAR_STREAM: the host's tar; DIRECTORY: the provider's worker run as
/// the container's root) and restored into a fresh root file system, which must equal the source in the host's view.
/// </summary>
public sealed class ContainerBackupTests
{
    private static readonly IdMap Map = IdMap.CreateDefault();

    [Theory]
    [InlineData("tar-stream", ContainerBackupMechanism.TarStream)]
    [InlineData("directory", ContainerBackupMechanism.Directory)]
    public async Task A_container_round_trips_through_the_provider_with_owners_xattrs_and_links(string option, ContainerBackupMechanism mechanism)
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        SampleRootfs.Build(rootfs);
        string data = dir.CreateDirectory("data");
        File.WriteAllText(Path.Combine(data, "volume-file"), "on a mount point\n");
        HostTool.Chown(data, SampleRootfs.HostBase, SampleRootfs.HostBase);
        HostTool.Chown(Path.Combine(data, "volume-file"), SampleRootfs.HostBase + 1000, SampleRootfs.HostBase + 1000);
        string secret = WriteRootOnlySecret(dir);
        File.CreateSymbolicLink(Path.Combine(rootfs, "etc/secret-link"), secret);
        HostTool.Chown(Path.Combine(rootfs, "etc/secret-link"), SampleRootfs.HostBase, SampleRootfs.HostBase);
        // The bind target of the root-only host file; the container's root cannot read what is mounted on it.
        File.WriteAllText(Path.Combine(rootfs, "mnt/secret"), "");
        HostTool.Chown(Path.Combine(rootfs, "mnt/secret"), SampleRootfs.HostBase, SampleRootfs.HostBase);
        ContainerGuest guest = WriteGuest(dir, "101", $"""
            type: ct
            name: web
            rootfs: {rootfs}
            mp: /mnt/data host={data} backup=yes
            mp: /mnt/secret host={secret} backup=yes
            idmap: u 0 100000 65536
            idmap: g 0 100000 65536
            firewall: {WriteFile(dir, "fw", "[OPTIONS]\nenable: 1\n")}
            """);

        await using var provider = await DirectoryProviderProcess.StartAsync(extraArguments: ["--ct-mechanism", option]);
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        ContainerBackupResult backup = await new ContainerBackupRunner(connection, NullLogger<ContainerBackupRunner>.Instance)
            .BackupAsync(await StartJobAsync(connection), guest, Options(dir), CancellationToken.None);

        Assert.Equal(mechanism, backup.Mechanism);
        Assert.False(backup.Privileged);
        Assert.True(backup.Stats.ArchiveSizeBytes > 0);
        // The root-only host file bound in is unreadable for the container's root: left out, reported, not fatal.
        Assert.Contains(backup.Warnings, w => w.Contains("secret", StringComparison.Ordinal));
        string archive = Path.Combine(provider.RepositoryPath, backup.ArchiveName, "rootfs.tar.zst");
        string listing = HostTool.Run("tar", "--zstd", "--list", "--verbose", "--numeric-owner", "--file", archive);
        // The archive holds the container's view of ownership, never the host's shifted ids.
        Assert.Contains(" 0/0 ", listing, StringComparison.Ordinal);
        Assert.Contains(" 33/33 ", listing, StringComparison.Ordinal);
        Assert.DoesNotContain("100000/", listing, StringComparison.Ordinal);
        string contents = HostTool.Run("sh", "-c", $"zstd -dc '{archive}' | strings");
        Assert.DoesNotContain(File.ReadAllText(secret).Trim(), contents, StringComparison.Ordinal);
        Assert.DoesNotContain(File.ReadAllText("/etc/shadow").Split('\n')[0], contents, StringComparison.Ordinal);

        string target = dir.RestoreTarget("restored");
        ContainerRestoreRunResult restore = await new ContainerRestoreRunner(connection, NullLogger<ContainerRestoreRunner>.Instance)
            .RestoreAsync(backup.ArchiveName, new ContainerRestoreRunOptions { IdMap = Map, TargetRootFileSystem = target, ConfigDirectory = dir.Combine("config") },
                CancellationToken.None);

        Dictionary<string, string> expected = TreeListing.OnHost(rootfs);
        expected["mnt/data/volume-file"] = TreeListing.OnHost(data)["volume-file"];
        Dictionary<string, string> actual = TreeListing.OnHost(target);
        expected.Remove("mnt/secret");
        actual.Remove("mnt/secret");
        Assert.Equal(expected.OrderBy(p => p.Key), actual.OrderBy(p => p.Key));
        Assert.Equal("100033:100033", TreeListing.Owner(actual, "var/www/index.html"));
        Assert.Equal(HostTool.Run("stat", "--format=%i", Path.Combine(target, "home/user/a")), HostTool.Run("stat", "--format=%i", Path.Combine(target, "home/user/b")));
        Assert.Equal("set by the test", Xattr.Get(Path.Combine(target, "etc/hostname"), "user.comment"));
        Assert.Equal("fifo", HostTool.Run("stat", "--format=%F", Path.Combine(target, "run/initctl")).Trim());
        long allocated = long.Parse(HostTool.Run("stat", "--format=%b", Path.Combine(target, "var/lib/sparse.img")).Trim(), CultureInfo.InvariantCulture) * 512;
        Assert.True(allocated < 1 << 20, $"the sparse file takes {allocated} bytes on disk");
        Assert.Equal(guest.RawConfig.ToArray(), restore.GuestConfig.ToArray());
        Assert.Equal("[OPTIONS]\nenable: 1\n"u8.ToArray(), restore.FirewallConfig?.ToArray());
        Assert.Empty(Directory.GetFileSystemEntries(dir.Combine("work")));
    }

    [Fact]
    public async Task A_privileged_container_backs_up_with_a_warning_and_its_restore_is_refused()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        File.WriteAllText(Path.Combine(rootfs, "file"), "privileged\n");
        ContainerGuest guest = WriteGuest(dir, "102", $"type: ct\nrootfs: {rootfs}\n");
        Assert.True(guest.IsPrivileged);

        await using var provider = await DirectoryProviderProcess.StartAsync(extraArguments: ["--ct-mechanism", "tar-stream"]);
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        ContainerBackupResult backup = await new ContainerBackupRunner(connection, NullLogger<ContainerBackupRunner>.Instance)
            .BackupAsync(await StartJobAsync(connection), guest, Options(dir), CancellationToken.None);
        Assert.True(backup.Privileged);
        Assert.Contains(backup.Warnings, w => w.Contains("privileged", StringComparison.Ordinal));

        string target = dir.RestoreTarget("restored");
        var refused = await Assert.ThrowsAsync<ContainerRestoreException>(() => new ContainerRestoreRunner(connection, NullLogger<ContainerRestoreRunner>.Instance)
            .RestoreAsync(backup.ArchiveName, new ContainerRestoreRunOptions { IdMap = IdMap.Privileged, TargetRootFileSystem = target, ConfigDirectory = dir.Combine("c") },
                CancellationToken.None));
        Assert.Contains("privileged", refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target));
    }

    [Fact]
    public async Task A_worker_command_inside_the_container_tree_is_refused_before_anything_runs()
    {
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        string planted = WriteFile(dir, "rootfs/worker", "#!/bin/sh\n");
        HostTool.Chmod(planted, "755");
        ContainerGuest guest = WriteGuest(dir, "103", $"type: ct\nrootfs: {rootfs}\nidmap: u 0 100000 65536\nidmap: g 0 100000 65536\n");

        Assert.Contains("inside the container's tree",
            Assert.Throws<BackupException>(() => Orchestrator.Internal.WorkerCommand.Check(new ContainerWorker { Argv = { planted } }, guest, 0)).Message,
            StringComparison.Ordinal);
        Assert.Contains("not a normalized absolute path",
            Assert.Throws<BackupException>(() => Orchestrator.Internal.WorkerCommand.Check(new ContainerWorker { Argv = { "tar" } }, guest, 0)).Message,
            StringComparison.Ordinal);
        string writable = WriteFile(dir, "writable-worker", "#!/bin/sh\n");
        HostTool.Chmod(writable, "777");
        Assert.Contains("writable by group or others",
            Assert.Throws<BackupException>(() => Orchestrator.Internal.WorkerCommand.Check(new ContainerWorker { Argv = { writable } }, guest, 0)).Message,
            StringComparison.Ordinal);
        Assert.Equal(["/usr/bin/tar", "-c"], Orchestrator.Internal.WorkerCommand.Check(new ContainerWorker { Argv = { "/usr/bin/tar", "-c" } }, guest, 0));
    }

    [Fact]
    public async Task A_worker_owned_by_another_user_or_a_shell_is_refused()
    {
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        ContainerGuest guest = WriteGuest(dir, "104", $"type: ct\nrootfs: {rootfs}\nidmap: u 0 100000 65536\nidmap: g 0 100000 65536\n");
        string foreign = dir.Combine("foreign-worker");
        File.Copy("/usr/bin/true", foreign);
        HostTool.Chmod(foreign, "755");
        await ChildProcess.RunAsync("chown", ["65534:65534", foreign]);

        // Mode bits are fine (0755); the owner is neither root nor the provider.
        Assert.Contains("belongs to uid 65534",
            Assert.Throws<BackupException>(() => Orchestrator.Internal.WorkerCommand.Check(new ContainerWorker { Argv = { foreign } }, guest, 1234)).Message,
            StringComparison.Ordinal);
        // The same file is the provider's own when the provider runs as that uid.
        Assert.Equal([foreign], Orchestrator.Internal.WorkerCommand.Check(new ContainerWorker { Argv = { foreign } }, guest, 65534));
        // A shell turns its arguments into an unchecked program, whoever owns it.
        Assert.Contains("shell or interpreter",
            Assert.Throws<BackupException>(() => Orchestrator.Internal.WorkerCommand.Check(new ContainerWorker { Argv = { "/bin/sh", "-c", "kill -9 -1" } }, guest, 0)).Message,
            StringComparison.Ordinal);
        // dotnet runs the assembly it is given: that assembly is checked like argv[0].
        string assembly = dir.Combine("foreign.dll");
        File.Copy("/usr/bin/true", assembly);
        await ChildProcess.RunAsync("chown", ["65534:65534", assembly]);
        string dotnet = File.ResolveLinkTarget("/usr/bin/dotnet", returnFinalTarget: true)?.FullName ?? "/usr/bin/dotnet";
        Assert.Contains("worker assembly",
            Assert.Throws<BackupException>(() => Orchestrator.Internal.WorkerCommand.Check(new ContainerWorker { Argv = { dotnet, assembly } }, guest, 0)).Message,
            StringComparison.Ordinal);
    }

    private static async Task<string> StartJobAsync(ProviderConnection connection)
    {
        string jobId = Guid.NewGuid().ToString();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId });
        return jobId;
    }

    private static ContainerBackupRunOptions Options(TestDirectory dir)
    {
        string runtime = dir.CreateDirectory("runtime");
        return new ContainerBackupRunOptions { RuntimeDirectory = runtime, TemporaryDirectory = dir.CreateDirectory("work") };
    }

    private static ContainerGuest WriteGuest(TestDirectory dir, string id, string text)
    {
        string inventory = dir.CreateDirectory("inventory");
        File.WriteAllText(Path.Combine(inventory, id + ".conf"), text);
        return GuestInventory.Load(inventory).Containers[id];
    }

    private static string WriteFile(TestDirectory dir, string name, string content)
    {
        string path = dir.Combine(name);
        File.WriteAllText(path, content);
        return path;
    }

    private static string WriteRootOnlySecret(TestDirectory dir)
    {
        string path = WriteFile(dir, "host-secret", $"host secret {Guid.NewGuid():N}\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }
}
