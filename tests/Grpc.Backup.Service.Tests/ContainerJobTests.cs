using Grpc.Backup.Containers.Tests;
using Grpc.Backup.Service.Tests.Infrastructure;
using HostTool = Grpc.Backup.Containers.Tests.Host;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// A real container (a root file system shifted into a user namespace's id range) backed up by a configured job
/// through grpc-backupd and the CLI: the archive holds the container's view of ownership, the job's exclusions apply,
/// and the hook sees the container's phases with VMTYPE lxc.
/// </summary>
public sealed class ContainerJobTests
{
    [Fact]
    public async Task A_container_job_stores_the_containers_view_without_the_excluded_paths()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        SampleRootfs.Build(rootfs);
        await using var service = ServiceProcess.Create();
        await using var provider = await DirectoryProviderProcess.StartAsync();
        string hookLog = service.Root.File("hook.log");
        string hook = HookScript.Create(service.Root.Path, hookLog);
        service.WriteConfig("guests/101.conf", $"type: ct\nname: web\nrootfs: {rootfs}\nidmap: u 0 100000 65536\nidmap: g 0 100000 65536\ntags: web\n");
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("jobs/ct.conf", $"storage: dir\ntags: web\nmode: stop\nexclude-path: {string.Join(' ', SampleRootfs.Excludes)}\nhook: {hook}\n");
        await service.StartAsync();

        var reply = await service.CliJsonAsync("backup", "--job", "ct");
        Assert.Equal("TASK_STATE_SUCCEEDED", ScheduledJobTests.State(reply));
        string archive = reply.GetProperty("guests")[0].GetProperty("archiveName").GetString()!;
        string listing = HostTool.Run("tar", "--zstd", "--list", "--verbose", "--numeric-owner", "--file",
            Path.Combine(provider.RepositoryPath, archive, "rootfs.tar.zst"));
        Assert.Contains(" 0/0 ", listing, StringComparison.Ordinal);
        Assert.DoesNotContain("100000/", listing, StringComparison.Ordinal);
        Assert.All(SampleRootfs.ExcludedPaths, p => Assert.DoesNotContain(" ./" + p + "\n", listing, StringComparison.Ordinal));
        Assert.Contains(HookScript.Read(hookLog), c => c.Phase == "backup-end" && c.Guest == "101" && c.Target == archive);
        var listed = await service.CliJsonAsync("list", "--storage", "dir", "--guest", "101");
        Assert.Equal(archive, ScheduledJobTests.Backups(listed).Single().GetProperty("archiveName").GetString());
    }
}
