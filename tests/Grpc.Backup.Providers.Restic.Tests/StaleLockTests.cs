using System.Diagnostics;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Providers.Restic.Tests;

/// <summary>
/// A restic that died holding the repository lock (SIGKILL, OOM, a cancelled backup reaped the hard way) leaves a stale
/// lock that restic 0.14 never ignores: every later exclusive command failed with REPOSITORY_LOCKED until an operator
/// ran `restic unlock` (found by CI: the conformance kit's cancelled backup blocked the next four checks).
/// </summary>
public sealed class StaleLockTests
{
    [Fact]
    public async Task A_lock_left_by_a_killed_restic_is_cleared_and_the_next_exclusive_call_succeeds()
    {
        using var work = new TempDirectory();
        await using var provider = await ResticProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        string archive = await ContainerJobs.BackupAsync(connection, await ContainerTarStreamTests.MakeTarAsync(work));

        // A restic of the provider's user that takes the (shared) backup lock and is then killed without cleanup.
        var start = new ProcessStartInfo("setpriv")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (string arg in (string[])[.. ResticProviderProcess.AsProvider, "/usr/bin/restic", "--no-cache",
                     "--repo", provider.Repository, "--password-file", provider.PasswordFile, "backup", "--stdin"])
            start.ArgumentList.Add(arg);
        using (var holder = Process.Start(start)!)
        {
            // Polled, not slept: the lock file appears once restic has opened the repository.
            for (int i = 0; (await provider.ResticAsync("list", "locks", "--no-lock")).Trim().Length == 0; i++)
            {
                Assert.True(i < 1200 && !holder.HasExited, "restic backup --stdin never took its lock");
                await Task.Delay(50);
            }
            holder.Kill();
            await holder.WaitForExitAsync();
        }
        Assert.NotEmpty((await provider.ResticAsync("list", "locks", "--no-lock")).Trim());

        var updated = await connection.Repository.UpdateBackupAttributesAsync(new UpdateBackupAttributesRequest
        {
            ArchiveName = archive, Protected = true,
        });

        Assert.True(updated.Backup.Protected);
        Assert.Empty((await provider.ResticAsync("list", "locks", "--no-lock")).Trim());
    }
}
