using Google.Protobuf;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;
using Grpc.Backup.Transport;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Borg.Tests;

/// <summary>
/// The FILE_HANDLE mechanism as a host uses it: a readable fd of the point-in-time view, extents in-band on the
/// BackupVm stream, holes punched into the view by the provider after it stored them.
/// </summary>
public sealed class FileHandleTests
{
    private const string Device = "drive-virtio0";
    private const long Size = 32 * MiB;

    [Fact]
    public async Task A_full_and_an_incremental_from_file_descriptors_restore_byte_exact_and_stored_ranges_are_punched()
    {
        await using var provider = await BorgProvider.StartAsync("--vm-mechanism", "file-handle");
        var host = new SimulatedHost(provider.Connection);
        string disk = provider.Work("disk.raw");
        CreateSparse(disk, Size);
        WriteRandom(disk, 0, 8 * MiB, seed: 21);
        WriteRandom(disk, 20 * MiB, 4 * MiB, seed: 22);
        string expectedFull = await Sha256OfFileAsync(disk);
        string digestFull = (await ChunkDigestList.OfFileAsync(disk, CancellationToken.None)).Value;

        // Full: the data regions; the rest is known to be holes.
        (string fullArchive, VolumeCompleted full, string fullView) = await BackupAsync(host, provider, disk, "view0.raw", BitmapMode.New,
            [new Extent { Offset = 0, Length = 8 * MiB }, new Extent { Offset = 20 * MiB, Length = 4 * MiB }]);
        Assert.Equal((ulong)(12 * MiB), full.BytesRead);
        Assert.True(await AllocatedBytesAsync(fullView) < MiB, "the provider punched out what it stored");

        WriteRandom(disk, 1 * MiB, 256 * 1024, seed: 23);
        WriteRandom(disk, 30 * MiB, 512 * 1024, seed: 24);
        string expectedIncremental = await Sha256OfFileAsync(disk);
        string digestIncremental = (await ChunkDigestList.OfFileAsync(disk, CancellationToken.None)).Value;
        (string incrementalArchive, VolumeCompleted incremental, _) = await BackupAsync(host, provider, disk, "view1.raw", BitmapMode.Reuse,
            [new Extent { Offset = 1 * MiB, Length = 256 * 1024 }, new Extent { Offset = 30 * MiB, Length = 512 * 1024 }]);
        Assert.Equal((ulong)(768 * 1024), incremental.BytesRead);
        Assert.Equal(BitmapMode.Reuse, incremental.BitmapMode);

        Assert.Equal(digestFull, full.Digest.Value);
        Assert.Equal(digestIncremental, incremental.Digest.Value);
        Assert.Equal(expectedFull, (await host.RestoreAsync(fullArchive, Device)).Sha256);
        Assert.Equal(expectedIncremental, (await host.RestoreAsync(incrementalArchive, Device)).Sha256);
    }

    private static async Task<(string Archive, VolumeCompleted Completed, string View)> BackupAsync(SimulatedHost host, BorgProvider provider,
        string disk, string viewName, BitmapMode mode, Extent[] extents)
    {
        // The point-in-time view the host would expose: a sparse copy the provider may punch holes into.
        string view = provider.Work(viewName);
        await RunAsync("cp", "--sparse=always", disk, view);
        string job = await host.JobInitAsync();
        string backupId = Guid.NewGuid().ToString();
        string archive = await host.BackupInitAsync(job, backupId, "800", DateTimeOffset.UtcNow.AddMinutes(mode == BitmapMode.New ? 0 : 1));
        BackupGetMechanismResponse mechanism = await host.Connection.Backup.BackupGetMechanismAsync(
            new BackupGetMechanismRequest { BackupId = backupId, GuestType = GuestType.Vm });
        Assert.Equal(VmBackupMechanism.FileHandle, mechanism.Vm);
        Dictionary<string, IncrementalChoice> choices = await host.QueryIncrementalAsync(backupId, (Device, Size));
        Assert.Equal(mode == BitmapMode.Reuse ? IncrementalChoice.Use : IncrementalChoice.New, choices[Device]);

        var events = new List<BackupVmEvent>();
        using (var file = File.OpenHandle(view, FileMode.Open, FileAccess.ReadWrite))
        {
            IReadOnlyList<FdRef> refs = await host.Connection.SendFdsAsync([new FdToSend(file, Transport.FdKind.File)], CancellationToken.None);
            using var call = host.Connection.Backup.BackupVm();
            await call.RequestStream.WriteAsync(new BackupVmRequest
            {
                Start = new BackupVmStart
                {
                    BackupId = backupId,
                    GuestConfig = ByteString.CopyFromUtf8(SimulatedHost.DefaultGuestConfig),
                    Consistency = Consistency.Crash,
                    Volumes = { new VmVolume { DeviceName = Device, SizeBytes = Size, BitmapMode = mode, File = new FileVolumeSource { File = refs[0] } } },
                },
            });
            // Extents in two messages, as a host streaming a long list would.
            await call.RequestStream.WriteAsync(new BackupVmRequest { Extents = new VolumeExtents { DeviceName = Device, Extents = { extents[0] } } });
            await call.RequestStream.WriteAsync(new BackupVmRequest
            {
                Extents = new VolumeExtents { DeviceName = Device, Extents = { extents.Skip(1) }, Last = true },
            });
            await call.RequestStream.CompleteAsync();
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                events.Add(call.ResponseStream.Current);
            }
        }
        await host.BackupCleanupAsync(job, backupId, success: true);
        await host.Connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = job, Success = true });
        VolumeCompleted completed = events.Where(e => e.EventCase == BackupVmEvent.EventOneofCase.VolumeCompleted).Single().VolumeCompleted;
        return (archive, completed, view);
    }
}
