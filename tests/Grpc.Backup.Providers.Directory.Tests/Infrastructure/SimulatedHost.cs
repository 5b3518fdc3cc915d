using System.Net.Sockets;
using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Grpc.Core;

namespace Grpc.Backup.Providers.Directory.Tests.Infrastructure;

/// <summary>
/// Drives the provider the way the host's job engine does (protos/README.md lifecycles), with qemu-nbd exports as the
/// point-in-time sources and its own reads of the restore sources the provider passes back.
/// </summary>
internal sealed class SimulatedHost(ProviderConnection connection)
{
    public const string DefaultGuestConfig = "name: vm100\r\nmemory: 2048\r\n#qmdump#map:scsi0:drive-scsi0:local:raw:\n";

    public ProviderConnection Connection => connection;

    public async Task<string> JobInitAsync()
    {
        string jobId = Guid.NewGuid().ToString();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
        return jobId;
    }

    public async Task<string> BackupInitAsync(string jobId, string backupId, string guestId, DateTimeOffset time)
    {
        BackupInitResponse response = await connection.Backup.BackupInitAsync(new BackupInitRequest
        {
            JobId = jobId,
            BackupId = backupId,
            GuestId = guestId,
            GuestType = GuestType.Vm,
            BackupTime = Timestamp.FromDateTimeOffset(time),
            GuestName = "vm" + guestId,
        });
        return response.ArchiveName;
    }

    public async Task<Dictionary<string, IncrementalChoice>> QueryIncrementalAsync(string backupId, params (string Device, long Size)[] volumes)
    {
        var request = new BackupVmQueryIncrementalRequest { BackupId = backupId };
        foreach ((string device, long size) in volumes)
        {
            request.Volumes.Add(new VolumeSize { DeviceName = device, SizeBytes = (ulong)size });
        }
        BackupVmQueryIncrementalResponse response = await connection.Backup.BackupVmQueryIncrementalAsync(request);
        return response.Choices.ToDictionary(c => c.DeviceName, c => c.Choice_);
    }

    /// <summary>
    /// Runs BackupVm: connects one socket per volume (plus extras) to its export, passes them all in one sideband
    /// transfer, sends `start`, half-closes and collects the events until the provider ends the stream.
    /// </summary>
    public async Task<List<BackupVmEvent>> BackupVmAsync(string backupId, IReadOnlyList<VolumeSpec> volumes, byte[] guestConfig,
        byte[]? firewallConfig = null, ulong bandwidth = 0, Func<BackupVmEvent, bool>? cancelWhen = null,
        CancellationToken cancellationToken = default)
    {
        var sockets = new List<Socket>();
        try
        {
            var start = new BackupVmStart
            {
                BackupId = backupId,
                GuestConfig = ByteString.CopyFrom(guestConfig),
                HasFirewallConfig = firewallConfig is not null,
                FirewallConfig = ByteString.CopyFrom(firewallConfig ?? []),
                BandwidthLimit = new BandwidthLimit { BytesPerSecond = bandwidth },
                Consistency = Consistency.Crash,
            };
            var firstIndex = new List<int>();
            foreach (VolumeSpec volume in volumes)
            {
                firstIndex.Add(sockets.Count);
                for (int i = 0; i <= volume.ExtraConnections; i++)
                {
                    sockets.Add(await volume.Export.ConnectAsync());
                }
            }
            IReadOnlyList<FdRef> refs = sockets.Count == 0 ? [] : await connection.SendFdsAsync(
                sockets.Select(s => new FdToSend(s.SafeHandle, Transport.FdKind.NbdSocket)).ToList(), cancellationToken);
            for (int v = 0; v < volumes.Count; v++)
            {
                VolumeSpec volume = volumes[v];
                start.Volumes.Add(new VmVolume
                {
                    DeviceName = volume.Device,
                    SizeBytes = (ulong)volume.Size,
                    BitmapMode = volume.Mode,
                    Nbd = new NbdVolumeSource
                    {
                        Socket = refs[firstIndex[v]],
                        ExportName = volume.Export.ExportName,
                        BitmapContext = volume.BitmapContext,
                        ExtraConnections = volume.ExtraConnections,
                    },
                });
            }

            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var call = connection.Backup.BackupVm(cancellationToken: cancel.Token);
            await call.RequestStream.WriteAsync(new BackupVmRequest { Start = start }, cancellationToken);
            await call.RequestStream.CompleteAsync();
            var events = new List<BackupVmEvent>();
            while (await call.ResponseStream.MoveNext(cancellationToken))
            {
                events.Add(call.ResponseStream.Current);
                if (cancelWhen?.Invoke(call.ResponseStream.Current) == true)
                {
                    await cancel.CancelAsync();
                }
            }
            return events;
        }
        finally
        {
            foreach (Socket socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    public async Task HandleLogAsync(string backupId, string logPath)
    {
        using var handle = File.OpenHandle(logPath);
        IReadOnlyList<FdRef> refs = await connection.SendFdsAsync([new FdToSend(handle, Transport.FdKind.File)], CancellationToken.None);
        await connection.Backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = backupId, LogFile = refs[0] });
    }

    public async Task<BackupStats> BackupCleanupAsync(string jobId, string backupId, bool success)
    {
        BackupCleanupResponse response = await connection.Backup.BackupCleanupAsync(new BackupCleanupRequest
        {
            JobId = jobId,
            BackupId = backupId,
            Success = success,
            Error = success ? "" : "the host failed the backup",
        });
        return response.Stats;
    }

    /// <summary>A whole successful VM backup of one guest in its own job, from JobInit to JobCleanup.</summary>
    public async Task<BackupOutcome> BackupAsync(string guestId, DateTimeOffset time, IReadOnlyList<VolumeSpec> volumes,
        byte[]? guestConfig = null, byte[]? firewallConfig = null, string? logPath = null)
    {
        string jobId = await JobInitAsync();
        string backupId = Guid.NewGuid().ToString();
        try
        {
            string archive = await BackupInitAsync(jobId, backupId, guestId, time);
            BackupGetMechanismResponse mechanism = await connection.Backup.BackupGetMechanismAsync(
                new BackupGetMechanismRequest { BackupId = backupId, GuestType = GuestType.Vm });
            Assert.Equal(VmBackupMechanism.Nbd, mechanism.Vm);
            Dictionary<string, IncrementalChoice> choices = await QueryIncrementalAsync(backupId,
                volumes.Select(v => (v.Device, v.Size)).ToArray());
            List<BackupVmEvent> events = await BackupVmAsync(backupId, volumes,
                guestConfig ?? System.Text.Encoding.UTF8.GetBytes(DefaultGuestConfig), firewallConfig);
            if (logPath is not null)
            {
                await HandleLogAsync(backupId, logPath);
            }
            BackupStats stats = await BackupCleanupAsync(jobId, backupId, success: true);
            return new BackupOutcome(archive, choices, events, stats);
        }
        catch
        {
            await BackupCleanupAsync(jobId, backupId, success: false);
            throw;
        }
        finally
        {
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = true });
        }
    }

    /// <summary>Restores one device as the host does and returns the hash of every byte it read.</summary>
    public async Task<RestoredVolume> RestoreAsync(string archiveName, string device)
    {
        RestoreGetMechanismResponse mechanism = await connection.Restore.RestoreGetMechanismAsync(
            new RestoreGetMechanismRequest { ArchiveName = archiveName });
        Assert.Equal(GuestType.Vm, mechanism.GuestType);
        Assert.Equal(VmRestoreMechanism.QemuImg, mechanism.Vm);
        string restoreId = Guid.NewGuid().ToString();
        try
        {
            RestoreVmInitResponse init = await connection.Restore.RestoreVmInitAsync(
                new RestoreVmInitRequest { RestoreId = restoreId, ArchiveName = archiveName });
            long size = (long)init.Volumes.Single(v => v.DeviceName == device).SizeBytes;
            try
            {
                return await ReadVolumeAsync(restoreId, archiveName, device, size);
            }
            finally
            {
                await connection.Restore.RestoreVmVolumeCleanupAsync(new RestoreVmVolumeCleanupRequest
                {
                    RestoreId = restoreId, ArchiveName = archiveName, DeviceName = device,
                });
            }
        }
        finally
        {
            await connection.Restore.RestoreVmCleanupAsync(new RestoreVmCleanupRequest { RestoreId = restoreId, ArchiveName = archiveName });
        }
    }

    private async Task<RestoredVolume> ReadVolumeAsync(string restoreId, string archiveName, string device, long size)
    {
        FdChannel channel = await connection.GetFdChannelAsync(CancellationToken.None);
        RestoreVmVolumeInitResponse source = await connection.Restore.RestoreVmVolumeInitAsync(new RestoreVmVolumeInitRequest
        {
            RestoreId = restoreId,
            ArchiveName = archiveName,
            DeviceName = device,
            FdChannelId = ByteString.CopyFrom(channel.ChannelId.ToByteArray()),
        });
        Assert.Equal(RestoreVmVolumeInitResponse.SourceOneofCase.Fd, source.SourceCase);
        using PassedFd passed = await connection.ClaimFdAsync(source.Fd, CancellationToken.None);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[4 * 1024 * 1024];
        if (passed.Kind == Transport.FdKind.File)
        {
            using var handle = passed.TakeFileHandle();
            Assert.Equal(size, RandomAccess.GetLength(handle));
            for (long offset = 0; offset < size;)
            {
                int read = await RandomAccess.ReadAsync(handle, buffer, offset);
                Assert.True(read > 0, $"the restore source ended at {offset} of {size} bytes");
                hash.AppendData(buffer, 0, read);
                offset += read;
            }
        }
        else
        {
            Assert.Equal(Transport.FdKind.NbdSocket, passed.Kind);
            await using NbdClient client = await NbdClient.ConnectAsync(passed.TakeSocket(), source.NbdExportName);
            Assert.Equal(size, client.Export.Size);
            for (long offset = 0; offset < size; offset += buffer.Length)
            {
                int length = (int)Math.Min(buffer.Length, size - offset);
                await client.ReadAsync(offset, buffer.AsMemory(0, length));
                hash.AppendData(buffer, 0, length);
            }
        }
        return new RestoredVolume(Convert.ToHexStringLower(hash.GetHashAndReset()), size, passed.Kind);
    }

    /// <summary>The status of a call that must fail.</summary>
    public static async Task<RpcException> FailsAsync(Func<Task> call)
    {
        return await Assert.ThrowsAsync<RpcException>(call);
    }
}
