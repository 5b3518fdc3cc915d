using System.Security.Cryptography;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Providers.Restic.Tests;

/// <summary>The provider side of TAR_STREAM: a pax tar in through a passed pipe, the same bytes back out of one.</summary>
public sealed class ContainerTarStreamTests
{
    [Fact]
    public async Task A_pax_tar_stream_round_trips_byte_exact_through_a_passed_pipe()
    {
        using var work = new TempDirectory();
        byte[] tar = await MakeTarAsync(work);
        await using var provider = await ResticProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);

        string archive = await ContainerJobs.BackupAsync(connection, tar);
        byte[] restored = await ContainerJobs.RestoreAsync(connection, archive);

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(tar)), Convert.ToHexStringLower(SHA256.HashData(restored)));
        var config = await connection.Restore.ArchiveGetGuestConfigAsync(new ArchiveGetGuestConfigRequest { ArchiveName = archive });
        Assert.Equal(ContainerJobs.Config, config.GuestConfig.ToByteArray());
        var firewall = await connection.Restore.ArchiveGetFirewallConfigAsync(new ArchiveGetFirewallConfigRequest { ArchiveName = archive });
        Assert.False(firewall.Present);
        var stat = await connection.Repository.StatBackupAsync(new StatBackupRequest { ArchiveName = archive });
        Assert.Equal(GuestType.Container, stat.Backup.GuestType);
        Assert.Equal((ulong)tar.Length, stat.Backup.RestoredSizeBytes);
    }

    [Fact]
    public async Task A_truncated_tar_stream_is_data_loss_and_leaves_no_archive()
    {
        using var work = new TempDirectory();
        byte[] tar = await MakeTarAsync(work);
        await using var provider = await ResticProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);

        var error = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => ContainerJobs.BackupAsync(connection, tar[..(tar.Length / 2)], success: false));
        Assert.Equal(Grpc.Core.StatusCode.DataLoss, error.StatusCode);
        var listed = await connection.Repository.ListBackupsAsync(new ListBackupsRequest());
        Assert.Empty(listed.Backups);
        // BackupCleanup(success=false) forgot the partial data snapshot too.
        Assert.Equal("[]", (await provider.ResticAsync("snapshots", "--json")).Trim());
    }

    internal static async Task<byte[]> MakeTarAsync(TempDirectory work)
    {
        string root = work.File("tree");
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        await File.WriteAllTextAsync(Path.Combine(root, "etc", "hostname"), "ct200\n");
        await File.WriteAllBytesAsync(Path.Combine(root, "random.bin"), RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17));
        File.CreateSymbolicLink(Path.Combine(root, "link"), "etc/hostname");
        string tarPath = work.File("tree.tar");
        var (exitCode, _, stderr) = await ChildProcess.RunAsync("tar",
            ["--format=pax", "--numeric-owner", "-C", root, "-cf", tarPath, "."]);
        Assert.True(exitCode == 0, stderr);
        return await File.ReadAllBytesAsync(tarPath);
    }
}
