using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;
using Grpc.Core;

namespace Grpc.Backup.Providers.Borg.Tests;

/// <summary>
/// An <c>ssh://</c> repository on a real sshd on 127.0.0.1 (started by the test, root login by key, forced to
/// <c>borg serve --restrict-to-path</c>); the provider runs as nobody and names its key and known_hosts by path only.
/// </summary>
public sealed class SshRepositoryTests
{
    private const string Device = "drive-scsi0";
    private static readonly DateTimeOffset Time = new(2025, 5, 1, 8, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task A_full_and_an_incremental_over_ssh_restore_byte_exact_and_the_key_travels_by_path_only()
    {
        await using SshServer server = await SshServer.StartAsync();
        string privateKey = "";
        await using BorgProvider provider = await BorgProvider.StartAsync(server.RepositoryUrl, async p =>
        {
            System.IO.Directory.CreateDirectory(p.Private("ssh"));
            await RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gbt-provider", "-f", p.Private("ssh/id_ed25519"));
            privateKey = await File.ReadAllTextAsync(p.Private("ssh/id_ed25519"));
            await server.AuthorizeAsync(await File.ReadAllTextAsync(p.Private("ssh/id_ed25519.pub")));
            await File.WriteAllTextAsync(p.Private("ssh/known_hosts"), server.KnownHostsLine + "\n");
            p.AddArguments("--ssh-key-file", p.Private("ssh/id_ed25519"), "--ssh-known-hosts", p.Private("ssh/known_hosts"));
            await server.InitRepositoryAsync(p.PassphraseFile);
        });
        // The key is nobody's and readable by nobody else (ssh itself refuses a key others can read).
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(provider.Private("ssh/id_ed25519")));
        var host = new SimulatedHost(provider.Connection);
        Qcow2Disk disk = await Qcow2Disk.CreateAsync(provider.Work("disk.qcow2"), 16 * Images.MiB, seed: 11);

        using var watching = new CancellationTokenSource();
        Task<List<string>> seen = WatchNobodyProcessesAsync(watching.Token);
        string expectedFull = await disk.Sha256Async();
        string digestFull = (await disk.ChunkDigestsAsync()).Value;
        BackupOutcome full = await BackupAsync(host, provider, disk, 0, BitmapMode.New);
        await disk.ClearBitmapAsync();
        await disk.WriteAsync(0x3c, 5 * Images.MiB, 128 * 1024);
        await disk.WriteAsync(0x7e, 13 * Images.MiB, 64 * 1024);
        string expectedIncremental = await disk.Sha256Async();
        string digestIncremental = (await disk.ChunkDigestsAsync()).Value;
        BackupOutcome incremental = await BackupAsync(host, provider, disk, 1, BitmapMode.Reuse);
        await watching.CancelAsync();
        List<string> processes = await seen;

        Assert.Equal(IncrementalChoice.Use, incremental.Choices[Device]);
        Assert.Equal((ulong)(192 * 1024), incremental.Completed(Device).BytesRead);
        Assert.Equal(digestFull, full.Completed(Device).Digest.Value);
        Assert.Equal(digestIncremental, incremental.Completed(Device).Digest.Value);
        Assert.Equal(expectedFull, (await host.RestoreAsync(full.ArchiveName, Device)).Sha256);
        Assert.Equal(expectedIncremental, (await host.RestoreAsync(incremental.ArchiveName, Device)).Sha256);
        ListBackupsResponse listed = await provider.Connection.Repository.ListBackupsAsync(new ListBackupsRequest { GuestId = "500" });
        Assert.Equal([incremental.ArchiveName, full.ArchiveName], listed.Backups.Select(b => b.ArchiveName));

        // ssh ran, as nobody, with the key and known_hosts as paths; the key's contents and the passphrase appear in
        // no argv or environment and in nothing the provider logged.
        string sshKeyArgument = "-i " + provider.Private("ssh/id_ed25519");
        Assert.Contains(processes, p => p.StartsWith("ssh ", StringComparison.Ordinal) && p.Contains(sshKeyArgument, StringComparison.Ordinal)
            && p.Contains("UserKnownHostsFile=" + provider.Private("ssh/known_hosts"), StringComparison.Ordinal)
            && p.Contains("StrictHostKeyChecking=yes", StringComparison.Ordinal));
        string keyBody = privateKey.Split('\n')[1];
        Assert.All(processes, p => Assert.DoesNotContain(keyBody, p, StringComparison.Ordinal));
        Assert.All(processes, p => Assert.DoesNotContain(BorgProvider.Passphrase, p, StringComparison.Ordinal));
        Assert.DoesNotContain(keyBody, provider.Process.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain(BorgProvider.Passphrase, provider.Process.StandardError, StringComparison.Ordinal);

        (int check, _, string checkErrors) = await server.CheckRepositoryAsync(provider.PassphraseFile);
        Assert.True(check == 0, checkErrors);
    }

    [Fact]
    public async Task An_unreachable_ssh_repository_fails_JobInit_clearly()
    {
        int closedPort = LoopbackPorts.Free();
        await using BorgProvider provider = await BorgProvider.StartAsync($"ssh://root@127.0.0.1:{closedPort}/srv/borg", async p =>
        {
            System.IO.Directory.CreateDirectory(p.Private("ssh"));
            await RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", p.Private("ssh/id_ed25519"));
            await File.WriteAllTextAsync(p.Private("ssh/known_hosts"), "");
            p.AddArguments("--ssh-key-file", p.Private("ssh/id_ed25519"), "--ssh-known-hosts", p.Private("ssh/known_hosts"));
        });

        RpcException e = await Assert.ThrowsAsync<RpcException>(() => new SimulatedHost(provider.Connection).JobInitAsync());
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Equal(ErrorReason.RepositoryUnreachable, ProviderErrors.GetReason(e));
        // borg's own words, and the repository; ssh's "Connection refused" is added when borg relayed it (not always).
        Assert.Contains("Connection closed by remote host", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{closedPort}", e.Status.Detail, StringComparison.Ordinal);
        // The job failed before any guest (the host stops at a failed JobInit), and no borg is left behind.
        Assert.Empty(provider.BorgChildren());
    }

    private static async Task<BackupOutcome> BackupAsync(SimulatedHost host, BorgProvider provider, Qcow2Disk disk, int hour, BitmapMode mode)
    {
        bool incremental = mode == BitmapMode.Reuse;
        await using QemuNbdExport export = await disk.ExportAsync(provider.Work($"export{hour}.sock"), withBitmap: incremental);
        return await host.BackupAsync("500", Time.AddHours(hour),
            [new VolumeSpec(Device, disk.Size, mode, export, incremental ? Qcow2Disk.BitmapContext : "")]);
    }

    /// <summary>The argv and environment of every process running as nobody (the provider, borg, ssh), sampled.</summary>
    private static async Task<List<string>> WatchNobodyProcessesAsync(CancellationToken cancellationToken)
    {
        var seen = new List<string>();
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (string dir in System.IO.Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out int pid) || OwnerOf(dir) != BorgProvider.Nobody)
                {
                    continue;
                }
                seen.Add(BorgProvider.CommandLine(pid) + "\n" + BorgProvider.Environment(pid));
            }
            await Task.Delay(20, CancellationToken.None);
        }
        return seen;
    }

    private static long OwnerOf(string procDirectory)
    {
        try
        {
            string status = File.ReadAllText(Path.Combine(procDirectory, "status"));
            string uidLine = status.Split('\n').First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            return long.Parse(uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return -1;
        }
    }

    private static async Task RunAsync(string program, params string[] arguments)
    {
        (int exit, _, string stderr) = await ChildProcess.RunAsync(program, arguments);
        Assert.True(exit == 0, $"{program} failed: {stderr}");
    }
}
