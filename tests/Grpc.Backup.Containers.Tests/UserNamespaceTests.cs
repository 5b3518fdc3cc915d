namespace Grpc.Backup.Containers.Tests;

public sealed class UserNamespaceTests
{
    [Fact]
    public async Task Commands_run_as_root_inside_with_the_whole_map_the_host_network_and_a_private_mount_namespace()
    {
        RequiredTools.Ensure();
        IdMap map = IdMap.Parse("u 0 100000 1000\nu 1000 300000 10\ng 0 100000 65536");
        await using UserNamespace ns = await UserNamespace.CreateAsync(map);

        Assert.Equal("0 0", (await Host.RunInAsync(ns, "sh", "-c", "echo $(id -u) $(id -g)")).Trim());
        string[] uidMap = (await Host.RunInAsync(ns, "cat", "/proc/self/uid_map")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))).ToArray();
        Assert.Equal(["0 100000 1000", "1000 300000 10"], uidMap);
        Assert.Equal(new FileInfo("/proc/self/ns/net").LinkTarget,
            (await Host.RunInAsync(ns, "readlink", "/proc/self/ns/net")).Trim());
        Assert.NotEqual(new FileInfo("/proc/self/ns/mnt").LinkTarget, (await Host.RunInAsync(ns, "readlink", "/proc/self/ns/mnt")).Trim());
        Assert.NotEqual(new FileInfo("/proc/self/ns/user").LinkTarget, (await Host.RunInAsync(ns, "readlink", "/proc/self/ns/user")).Trim());
    }

    [Fact]
    public async Task The_containers_root_owns_files_as_its_host_id_and_cannot_read_host_root_files()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string owned = dir.CreateDirectory("owned");
        Host.Chown(owned, 100000, 100000);
        await using UserNamespace ns = await UserNamespace.CreateAsync(IdMap.CreateDefault());

        await Host.RunInAsync(ns, "sh", "-c", "echo hi > \"$1\" && chown 33:33 \"$1\"", "sh", Path.Combine(owned, "made-inside"));
        Assert.Equal("100033:100033", Host.Run("stat", "--format=%u:%g", Path.Combine(owned, "made-inside")).Trim());

        using System.Diagnostics.Process cat = ns.Command("cat", "/etc/shadow").Start();
        string error = await cat.StandardError.ReadToEndAsync();
        await cat.WaitForExitAsync();
        Assert.NotEqual(0, cat.ExitCode);
        Assert.Contains("Permission denied", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Disposing_ends_the_holder_and_a_privileged_map_runs_commands_as_host_root()
    {
        RequiredTools.Ensure();
        UserNamespace ns = await UserNamespace.CreateAsync(IdMap.Privileged);
        int holder = ns.HolderProcessId;
        Assert.True(ns.IsPrivileged);
        Assert.Equal(new FileInfo("/proc/self/ns/user").LinkTarget, (await Host.RunInAsync(ns, "readlink", "/proc/self/ns/user")).Trim());
        Assert.NotEqual(new FileInfo("/proc/self/ns/mnt").LinkTarget, (await Host.RunInAsync(ns, "readlink", "/proc/self/ns/mnt")).Trim());
        Assert.NotEmpty(await Host.RunInAsync(ns, "head", "-c", "1", "/etc/shadow"));

        await ns.DisposeAsync();
        Assert.False(Directory.Exists($"/proc/{holder}"));
        Assert.Throws<ObjectDisposedException>(() => ns.Command("true").CreateStartInfo());
    }
}
