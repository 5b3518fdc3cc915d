using System.Formats.Tar;
using Grpc.Backup.Containers;
using Grpc.Backup.Containers.Tests;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using HostTool = Grpc.Backup.Containers.Tests.Host;

namespace Grpc.Backup.Tests;

/// <summary>
/// Single files from a real container backup (the sample root file system backed up through each provider's
/// TAR_STREAM), through <c>grpc-backup files</c> as a process: a listing equals the source directory in the
/// container's view, extracted files and trees equal the source in the host's view (setuid bits cleared), a tar of a
/// selection holds exactly those members, and a path not in the archive exits 7.
/// </summary>
public sealed class ContainerFileRestoreTests
{
    private static readonly string Cli = Path.Combine(RepoPaths.Root, "src", "Grpc.Backup.Cli", "bin", RepoPaths.Configuration, "net10.0", "grpc-backup.dll");

    [Theory]
    [InlineData("directory")]
    [InlineData("borg")]
    [InlineData("restic")]
    public async Task Files_are_listed_and_extracted_from_a_container_backup_without_restoring_it(string providerName)
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        SampleRootfs.Build(rootfs);
        ContainerGuest guest = WriteGuest(dir, "110", $"type: ct\nrootfs: {rootfs}\nidmap: u 0 100000 65536\nidmap: g 0 100000 65536\n");
        await using IAsyncDisposable provider = await StartProviderAsync(providerName);
        string endpoint = EndpointOf(provider).ToString();
        string archive;
        await using (var connection = await ProviderConnection.ConnectAsync(EndpointOf(provider)))
        {
            string jobId = Guid.NewGuid().ToString();
            await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId });
            ContainerBackupResult backup = await new ContainerBackupRunner(connection, NullLogger<ContainerBackupRunner>.Instance).BackupAsync(jobId, guest,
                new ContainerBackupRunOptions { RuntimeDirectory = dir.CreateDirectory("runtime"), TemporaryDirectory = dir.CreateDirectory("work") },
                CancellationToken.None);
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId });
            archive = backup.ArchiveName;
        }

        // ls: the directory's members, in the container's view of owners; names, types, sizes, modes, link targets.
        string listing = await RunCliAsync(0, "files", "ls", archive, "/usr/bin", "--endpoint", endpoint);
        string[] lines = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Matches(@"^-rwxr-xr-x 0/0 +5010 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d usr/bin/busybox$", lines[0]);
        Assert.Matches(@"^lrwxrwxrwx 0/0 +0 .* usr/bin/sh -> busybox$", lines[1]);
        Assert.Matches(@"^-rwsr-xr-x 0/0 +5 .* usr/bin/su$", lines[2]);
        // What depends on the provider is its archive stream, which every provider's run above and below reads; the
        // listing and exit-status rules are the host's own, checked once (each call through restic costs seconds).
        bool hostRules = providerName == "directory";
        if (hostRules)
        {
            string root = await RunCliAsync(0, "files", "ls", archive, "--endpoint", endpoint);
            Assert.Contains(" etc/leak -> /etc/shadow", await RunCliAsync(0, "files", "ls", archive, "etc", "--endpoint", endpoint), StringComparison.Ordinal);
            foreach (string top in (string[])["etc/", "home/", "usr/", "var/", "lib -> usr/lib"])
            {
                Assert.Contains(" " + top, root, StringComparison.Ordinal);
            }
            Assert.Contains("33/33", await RunCliAsync(0, "files", "ls", archive, "var/www", "--endpoint", endpoint), StringComparison.Ordinal);
        }

        // get --to: a file and a tree, as the host sees them after a restore (container root = host 100000).
        string target = dir.RestoreTarget("files");
        await RunCliAsync(0, "files", "get", archive, "/etc/hostname", "home/user", "usr/bin", "--to", target, "--endpoint", endpoint);
        Dictionary<string, string> source = TreeListing.OnHost(rootfs);
        Dictionary<string, string> extracted = TreeListing.OnHost(target);
        string[] selected = [.. source.Keys.Order(StringComparer.Ordinal).Where(p => p == "etc/hostname" || p.StartsWith("home/user", StringComparison.Ordinal) || p.StartsWith("usr/bin", StringComparison.Ordinal))];
        // The parents tar created on the way ("etc", "home", "usr") are not members of the selection; nothing else is there.
        Assert.Equal(selected.Concat(["etc", "home", "usr"]).Order(StringComparer.Ordinal), extracted.Keys.Order(StringComparer.Ordinal));
        foreach (string path in selected.Where(p => p != "usr/bin/su"))
        {
            Assert.Equal(source[path], extracted[path]);
        }
        // The setuid bit is cleared unless asked for; owner and content are kept.
        Assert.Equal(source["usr/bin/su"].Replace(" 4755 ", " 755 ", StringComparison.Ordinal), extracted["usr/bin/su"]);
        // Borg 1.2's import-tar/export-tar do not keep pax xattrs: what the provider streams is what extraction gets.
        Assert.Equal(providerName == "borg" ? null : "set by the test", Xattr.Get(Path.Combine(target, "etc/hostname"), "user.comment"));
        Assert.Equal(HostTool.Run("stat", "--format=%i", Path.Combine(target, "home/user/a")), HostTool.Run("stat", "--format=%i", Path.Combine(target, "home/user/b")));
        Assert.False(File.Exists(Path.Combine(target, "etc/passwd")));

        // get --tar -: exactly the selected members, in the container's view.
        var (code, tarBytes, stderr) = await RunCliBytesAsync("files", "get", archive, "var/www", "--tar", "-", "--endpoint", endpoint);
        Assert.True(code == 0, stderr);
        var members = new Dictionary<string, (TarEntryType Type, int Uid, string Content)>(StringComparer.Ordinal);
        using (var reader = new TarReader(new MemoryStream(tarBytes)))
        {
            while (await reader.GetNextEntryAsync(copyData: true) is { } entry)
            {
                string content = entry.DataStream is null ? "" : await new StreamReader(entry.DataStream).ReadToEndAsync();
                members[entry.Name.TrimStart('.', '/').TrimEnd('/')] = (entry.EntryType, entry.Uid, content);
            }
        }
        Assert.Equal(["var/www", "var/www/index.html"], members.Keys.Order(StringComparer.Ordinal));
        Assert.Equal((TarEntryType.RegularFile, 33, "<h1>hello</h1>\n"), members["var/www/index.html"]);

        if (!hostRules)
        {
            return;
        }
        // A path not in the archive: exit 7, nothing left behind.
        string missing = dir.RestoreTarget("missing");
        await RunCliAsync(7, "files", "get", archive, "etc/no-such-file", "--to", missing, "--endpoint", endpoint);
        Assert.False(Directory.Exists(missing));
        await RunCliAsync(7, "files", "ls", archive, "no/such/dir", "--endpoint", endpoint);
        await RunCliAsync(2, "files", "get", archive, "../etc/shadow", "--tar", "-", "--endpoint", endpoint);
    }

    private static async Task<IAsyncDisposable> StartProviderAsync(string name) => name switch
    {
        "directory" => await DirectoryProviderProcess.StartAsync(extraArguments: ["--ct-mechanism", "tar-stream"]),
        "borg" => await BorgProvider.StartAsync(),
        _ => await ResticProviderProcess.StartAsync(),
    };

    private static ProviderEndpoint EndpointOf(IAsyncDisposable provider) => provider switch
    {
        DirectoryProviderProcess directory => directory.Endpoint,
        BorgProvider borg => borg.Endpoint,
        ResticProviderProcess restic => restic.Endpoint,
        _ => throw new ArgumentException("unknown provider", nameof(provider)),
    };

    private static async Task<string> RunCliAsync(int expectedExit, params string[] arguments)
    {
        var (code, stdout, stderr) = await ChildProcess.RunAsync("dotnet", [Cli, .. arguments], timeout: TimeSpan.FromMinutes(5));
        Assert.True(code == expectedExit, $"grpc-backup {string.Join(' ', arguments)} exited {code}, not {expectedExit}: {stderr}");
        return stdout;
    }

    private static async Task<(int ExitCode, byte[] Stdout, string Stderr)> RunCliBytesAsync(params string[] arguments)
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("dotnet", [Cli, .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        })!;
        process.StandardInput.Close();
        using var stdout = new MemoryStream();
        Task copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var bound = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(bound.Token);
        await copy;
        return (process.ExitCode, stdout.ToArray(), await stderr);
    }

    private static ContainerGuest WriteGuest(TestDirectory dir, string id, string text)
    {
        string inventory = dir.CreateDirectory("inventory");
        File.WriteAllText(Path.Combine(inventory, id + ".conf"), text);
        return GuestInventory.Load(inventory).Containers[id];
    }
}
