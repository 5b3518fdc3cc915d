using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Pipes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;
using Grpc.Backup.Transport;
using Grpc.Core;

namespace Grpc.Backup.Providers.Borg.Tests;

/// <summary>
/// Containers through TAR_STREAM: the test passes the read end of a pipe carrying a pax tar (numeric container-view
/// owners) through the host library, and reads the restore back from the pipe the provider passes.
/// </summary>
public sealed class ContainerTests
{
    [Fact]
    public async Task A_tar_stream_round_trips_with_container_view_owners_and_the_config_byte_exact()
    {
        await using var provider = await BorgProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string tree = provider.Work("rootfs");
        System.IO.Directory.CreateDirectory(Path.Combine(tree, "etc"));
        System.IO.Directory.CreateDirectory(Path.Combine(tree, "home/user"));
        await File.WriteAllTextAsync(Path.Combine(tree, "etc/hostname"), "ct900\n");
        byte[] blob = new byte[3 * 1024 * 1024];
        new Random(7).NextBytes(blob);
        await File.WriteAllBytesAsync(Path.Combine(tree, "home/user/data.bin"), blob);
        (int chown, _, string chownErrors) = await ChildProcess.RunAsync("chown", ["-R", "1000:1000", Path.Combine(tree, "home")]);
        Assert.True(chown == 0, chownErrors);
        byte[] config = "arch: amd64\r\nhostname: ct900\n\u00e9\n"u8.ToArray();

        string job = await host.JobInitAsync();
        string backupId = Guid.NewGuid().ToString();
        BackupInitResponse init = await provider.Connection.Backup.BackupInitAsync(new BackupInitRequest
        {
            JobId = job, BackupId = backupId, GuestId = "900", GuestType = GuestType.Container,
            BackupTime = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
        });
        BackupGetMechanismResponse mechanism = await provider.Connection.Backup.BackupGetMechanismAsync(
            new BackupGetMechanismRequest { BackupId = backupId, GuestType = GuestType.Container });
        Assert.Equal(ContainerBackupMechanism.TarStream, mechanism.Container);
        await provider.Connection.Backup.BackupContainerPrepareAsync(new BackupContainerPrepareRequest
        {
            BackupId = backupId, Mechanism = ContainerBackupMechanism.TarStream, RootHostUid = 100000, RootHostGid = 100000,
        });

        // The host's tar stream: owners as the container sees them (root, and user 1000).
        using var tar = Process.Start(new ProcessStartInfo("tar",
            ["--format=pax", "--numeric-owner", "-C", tree, "-cf", "-", "etc", "home"])
        {
            RedirectStandardOutput = true, UseShellExecute = false,
        })!;
        var pipe = (AnonymousPipeClientStream)tar.StandardOutput.BaseStream;
        IReadOnlyList<FdRef> refs = await provider.Connection.SendFdsAsync([new FdToSend(pipe.SafePipeHandle, Transport.FdKind.Pipe)], CancellationToken.None);
        pipe.Dispose(); // the provider holds the only read end now
        using (var call = provider.Connection.Backup.BackupContainer(new BackupContainerRequest
        {
            BackupId = backupId, GuestConfig = ByteString.CopyFrom(config), Sources = { "." }, TarStream = refs[0],
        }))
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
            }
        }
        await tar.WaitForExitAsync();
        BackupStats stats = await host.BackupCleanupAsync(job, backupId, success: true);
        await provider.Connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = job, Success = true });
        Assert.True(stats.ArchiveSizeBytes > 0 && stats.RestoredSizeBytes >= (ulong)blob.Length);

        RestoreGetMechanismResponse restoreMechanism = await provider.Connection.Restore.RestoreGetMechanismAsync(
            new RestoreGetMechanismRequest { ArchiveName = init.ArchiveName });
        Assert.Equal(ContainerRestoreMechanism.Tar, restoreMechanism.Container);
        Assert.Equal(config, (await provider.Connection.Restore.ArchiveGetGuestConfigAsync(
            new ArchiveGetGuestConfigRequest { ArchiveName = init.ArchiveName })).GuestConfig.ToByteArray());
        string restoreId = Guid.NewGuid().ToString();
        var entries = new Dictionary<string, (int Uid, int Gid, byte[]? Data)>();
        try
        {
            FdChannel channel = await provider.Connection.GetFdChannelAsync(CancellationToken.None);
            RestoreContainerInitResponse source = await provider.Connection.Restore.RestoreContainerInitAsync(new RestoreContainerInitRequest
            {
                RestoreId = restoreId, ArchiveName = init.ArchiveName, FdChannelId = ByteString.CopyFrom(channel.ChannelId.ToByteArray()),
            });
            using PassedFd passed = await provider.Connection.ClaimFdAsync(source.TarFd, CancellationToken.None);
            Assert.Equal(Transport.FdKind.Pipe, passed.Kind);
            using var stream = new FileStream(passed.TakeFileHandle(), FileAccess.Read);
            using var reader = new TarReader(stream);
            while (reader.GetNextEntry() is { } entry)
            {
                byte[]? data = null;
                if (entry.DataStream is { } content)
                {
                    using var copy = new MemoryStream();
                    content.CopyTo(copy);
                    data = copy.ToArray();
                }
                entries[entry.Name.TrimEnd('/')] = (entry.Uid, entry.Gid, data);
            }
        }
        finally
        {
            await provider.Connection.Restore.RestoreContainerCleanupAsync(new RestoreContainerCleanupRequest { RestoreId = restoreId, ArchiveName = init.ArchiveName });
        }
        Assert.Equal((0, 0), (entries["etc/hostname"].Uid, entries["etc/hostname"].Gid));
        Assert.Equal("ct900\n"u8.ToArray(), entries["etc/hostname"].Data);
        Assert.Equal((1000, 1000), (entries["home/user/data.bin"].Uid, entries["home/user/data.bin"].Gid));
        Assert.Equal(blob, entries["home/user/data.bin"].Data);
    }

    [Fact]
    public async Task A_cut_tar_stream_is_data_loss_and_leaves_no_archive()
    {
        await using var provider = await BorgProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string job = await host.JobInitAsync();
        string backupId = Guid.NewGuid().ToString();
        await provider.Connection.Backup.BackupInitAsync(new BackupInitRequest
        {
            JobId = job, BackupId = backupId, GuestId = "901", GuestType = GuestType.Container,
            BackupTime = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
        });
        // A tar header and part of its data, then EOF: no end-of-archive marker.
        using var head = Process.Start(new ProcessStartInfo("sh", ["-c", "d=$(mktemp -d); head -c 5000 /dev/urandom > \"$d/cut.bin\"; tar --format=pax -C \"$d\" -cf - cut.bin | head -c 3072; rm -rf \"$d\""])
        {
            RedirectStandardOutput = true, UseShellExecute = false,
        })!;
        var pipe = (AnonymousPipeClientStream)head.StandardOutput.BaseStream;
        IReadOnlyList<FdRef> refs = await provider.Connection.SendFdsAsync([new FdToSend(pipe.SafePipeHandle, Transport.FdKind.Pipe)], CancellationToken.None);
        pipe.Dispose();
        RpcException e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = provider.Connection.Backup.BackupContainer(new BackupContainerRequest { BackupId = backupId, TarStream = refs[0] });
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
            }
        });
        Assert.Equal(StatusCode.DataLoss, e.StatusCode);
        await host.BackupCleanupAsync(job, backupId, success: false);
        (_, string list, _) = await provider.BorgAsync("list", "--short", provider.RepositoryPath);
        Assert.Equal("", list.Trim());
    }
}
