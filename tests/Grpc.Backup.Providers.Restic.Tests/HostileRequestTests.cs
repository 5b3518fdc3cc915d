using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;
using Grpc.Backup.Transport;
using FdKind = Grpc.Backup.Transport.FdKind;
using Grpc.Core;

namespace Grpc.Backup.Providers.Restic.Tests;

/// <summary>Bad and hostile requests get clear statuses with the protocol's reasons; strangers are not served.</summary>
public sealed class HostileRequestTests : IAsyncLifetime
{
    private ResticProviderProcess _provider = null!;
    private ProviderConnection _connection = null!;

    public async Task InitializeAsync()
    {
        _provider = await ResticProviderProcess.StartAsync();
        _connection = await ProviderConnection.ConnectAsync(_provider.Endpoint);
    }

    public async Task DisposeAsync()
    {
        await _connection.DisposeAsync();
        await _provider.DisposeAsync();
    }

    [Theory]
    [InlineData("../../etc/passwd", StatusCode.InvalidArgument, ErrorReason.InvalidArchiveName)]
    [InlineData("/100/20260101T000000Z", StatusCode.InvalidArgument, ErrorReason.InvalidArchiveName)]
    [InlineData("100/./20260101T000000Z", StatusCode.InvalidArgument, ErrorReason.InvalidArchiveName)]
    [InlineData("100/20260101T000000Z,gb-meta", StatusCode.InvalidArgument, ErrorReason.InvalidArchiveName)]
    [InlineData("100/not-a-time", StatusCode.NotFound, ErrorReason.ArchiveNotFound)]
    [InlineData("100/20260101T000000Z", StatusCode.NotFound, ErrorReason.ArchiveNotFound)]
    public async Task Archive_names_are_checked_before_anything_reaches_restic(string name, StatusCode code, ErrorReason reason)
    {
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            _connection.Restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = name }).ResponseAsync);
        Assert.Equal(code, e.StatusCode);
        Assert.Equal(reason, e.GetReason());
        var stat = await Assert.ThrowsAsync<RpcException>(() =>
            _connection.Repository.StatBackupAsync(new StatBackupRequest { ArchiveName = name }).ResponseAsync);
        Assert.Equal(code, stat.StatusCode);
    }

    [Fact]
    public async Task Unknown_operations_and_bad_ids_are_refused()
    {
        var unknown = await Assert.ThrowsAsync<RpcException>(() => _connection.Backup.BackupGetMechanismAsync(
            new BackupGetMechanismRequest { BackupId = Guid.NewGuid().ToString(), GuestType = GuestType.Vm }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(ErrorReason.UnknownOperation, unknown.GetReason());

        var noJob = await Assert.ThrowsAsync<RpcException>(() => _connection.Backup.BackupInitAsync(new BackupInitRequest
        {
            JobId = Guid.NewGuid().ToString(), BackupId = Guid.NewGuid().ToString(), GuestId = "100", GuestType = GuestType.Vm,
        }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, noJob.StatusCode);

        string jobId = Guid.NewGuid().ToString();
        await _connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
        foreach (string guest in new[] { "..", "a/b", "", "100\n", new string('x', 65) })
        {
            var bad = await Assert.ThrowsAsync<RpcException>(() => _connection.Backup.BackupInitAsync(new BackupInitRequest
            {
                JobId = jobId, BackupId = Guid.NewGuid().ToString(), GuestId = guest, GuestType = GuestType.Vm,
            }).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        }
        // Cleanup of an unknown backup after a failure is fine (the provider may have restarted).
        await _connection.Backup.BackupCleanupAsync(new BackupCleanupRequest { JobId = jobId, BackupId = Guid.NewGuid().ToString() });
        await _connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId });
    }

    [Fact]
    public async Task A_file_passed_as_a_pipe_is_a_kind_mismatch_and_a_vm_start_without_sources_is_invalid()
    {
        string jobId = Guid.NewGuid().ToString(), backupId = Guid.NewGuid().ToString();
        await _connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId });
        await _connection.Backup.BackupInitAsync(new BackupInitRequest
        {
            JobId = jobId, BackupId = backupId, GuestId = "200", GuestType = GuestType.Container,
        });
        using var work = new TempDirectory();
        await File.WriteAllTextAsync(work.File("file"), "not a pipe");
        using var file = File.OpenHandle(work.File("file"));
        var refs = await _connection.SendFdsAsync([new FdToSend(file, FdKind.Pipe)], CancellationToken.None);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = _connection.Backup.BackupContainer(new BackupContainerRequest { BackupId = backupId, TarStream = refs[0] });
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
            }
        });
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal(ErrorReason.FdKindMismatch, e.GetReason());
        await _connection.Backup.BackupCleanupAsync(new BackupCleanupRequest { JobId = jobId, BackupId = backupId });

        string vmBackup = Guid.NewGuid().ToString();
        await _connection.Backup.BackupInitAsync(new BackupInitRequest { JobId = jobId, BackupId = vmBackup, GuestId = "100", GuestType = GuestType.Vm });
        var vm = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = _connection.Backup.BackupVm();
            await call.RequestStream.WriteAsync(new BackupVmRequest
            {
                Start = new BackupVmStart { BackupId = vmBackup, Volumes = { new VmVolume { DeviceName = "../sda", SizeBytes = 1 } } },
            });
            await call.RequestStream.CompleteAsync();
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
            }
        });
        Assert.Equal(StatusCode.InvalidArgument, vm.StatusCode);
        await _connection.Backup.BackupCleanupAsync(new BackupCleanupRequest { JobId = jobId, BackupId = vmBackup });
        await _connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId });
    }

    [Fact]
    public async Task A_peer_of_another_uid_is_closed_on_both_sockets()
    {
        // As uid 4242, connect to each socket and try to read: the provider closes the connection at once, so the read
        // sees EOF instead of the sideband's HELLO (or, on the gRPC socket, instead of the server's SETTINGS frame).
        string script = """
            import socket, sys
            for path, kind in ((sys.argv[1], socket.SOCK_STREAM), (sys.argv[1] + ".fds", socket.SOCK_SEQPACKET)):
                s = socket.socket(socket.AF_UNIX, kind)
                s.connect(path)
                try:
                    if kind == socket.SOCK_STREAM:
                        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
                    s.settimeout(10)
                    data = s.recv(100)
                except (BrokenPipeError, ConnectionResetError):
                    data = b""
                print(path, len(data))
            """;
        // The socket directory is 0700 to the provider's user; open it up for the stranger so only SO_PEERCRED stops it.
        string dir = Path.GetDirectoryName(_provider.Endpoint.SocketPath)!;
        File.SetUnixFileMode(dir, File.GetUnixFileMode(dir) | UnixFileMode.OtherExecute);
        File.SetUnixFileMode(_provider.Endpoint.SocketPath, (UnixFileMode)0b110_110_110);
        File.SetUnixFileMode(_provider.Endpoint.SidebandPath, (UnixFileMode)0b110_110_110);
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync("setpriv",
            ["--reuid=4242", "--regid=4242", "--clear-groups", "--", "/usr/bin/python3", "-c", script, _provider.Endpoint.SocketPath]);
        Assert.True(exitCode == 0, stderr);
        Assert.Equal([$"{_provider.Endpoint.SocketPath} 0", $"{_provider.Endpoint.SidebandPath} 0"],
            stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        // Root (the host) is still served.
        var info = await _connection.Identity.GetProviderInfoAsync(new GetProviderInfoRequest());
        Assert.Equal("org.grpcbackup.restic", info.Name);
    }
}
