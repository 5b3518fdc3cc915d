using System.Text;
using System.Text.Json;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;
using Grpc.Backup.Transport;
using Grpc.Core;
using Grpc.Health.V1;

namespace Grpc.Backup.Tests;

public sealed class ProviderHostTests
{
    private const UnixFileMode Mode0660 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;

    [Fact]
    public async Task Both_sockets_are_created_with_mode_0660()
    {
        await using var provider = await DirectoryProviderProcess.StartAsync();

        Assert.Equal(Mode0660, File.GetUnixFileMode(provider.Endpoint.SocketPath));
        Assert.Equal(Mode0660, File.GetUnixFileMode(provider.Endpoint.SidebandPath));
    }

    [Fact]
    public async Task Provider_logs_json_to_stderr_and_writes_nothing_to_stdout()
    {
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using (await ProviderConnection.ConnectAsync(provider.Endpoint))
        {
        }
        provider.Process.Terminate();
        Assert.Equal(0, await provider.Process.WaitForExitAsync(TimeSpan.FromSeconds(20)));

        Assert.Equal("", provider.Process.StandardOutput);
        string[] lines = provider.Process.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        foreach (string line in lines)
        {
            // Each line is "<timestamp> {json}" from the JSON console formatter.
            string json = line[line.IndexOf('{', StringComparison.Ordinal)..];
            using var record = JsonDocument.Parse(json);
            Assert.True(record.RootElement.TryGetProperty("LogLevel", out _), line);
        }
        Assert.False(File.Exists(provider.Endpoint.SocketPath), "the gRPC socket file is removed at shutdown");
        Assert.False(File.Exists(provider.Endpoint.SidebandPath), "the sideband socket file is removed at shutdown");
    }

    [Fact]
    public async Task Graceful_shutdown_cancels_in_flight_calls()
    {
        var provider = await InProcessProvider.StartAsync();
        await using var _ = provider;
        provider.Backup.BackupContainerHangs = true;
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        using var call = connection.Backup.BackupContainer(new BackupContainerRequest { BackupId = "b1" });
        Assert.True(await call.ResponseStream.MoveNext());
        await provider.Backup.BackupContainerStarted.Task;

        Task stopping = provider.StopAsync();
        bool sawCancellation = await provider.Backup.BackupContainerSawCancellation.Task.WaitAsync(TimeSpan.FromSeconds(5));
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(sawCancellation);
        var error = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.MoveNext());
        Assert.NotEqual(StatusCode.OK, error.StatusCode);
    }

    [Fact]
    public async Task Provider_started_by_systemd_socket_activate_answers_the_health_check()
    {
        using var directory = new TempDirectory();
        Directory.CreateDirectory(directory.File("repo"));
        string socket = directory.File("activated.sock");
        await using var activator = ChildProcess.Start("systemd-socket-activate",
            ["-l", socket, "--", "/usr/bin/env", "dotnet", RepoPaths.DirectoryProviderDll, "--repository", directory.File("repo")]);
        await activator.WaitForFileAsync(socket, TimeSpan.FromSeconds(10));
        var endpoint = ProviderEndpoint.Parse("unix:" + socket);

        // The first connection makes systemd-socket-activate start the provider on the passed socket.
        await using var connection = await ProviderConnection.ConnectAsync(endpoint,
            new ProviderConnectionOptions { MaxRetries = 8, RetryBaseDelay = TimeSpan.FromMilliseconds(100) });
        var health = await connection.Health.CheckAsync(new HealthCheckRequest { Service = "" });

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        Assert.Equal("org.grpcbackup.directory", connection.Info.Name);
        // The activated provider still offers the fd sideband, bound beside the passed socket.
        await using FdChannel channel = await connection.GetFdChannelAsync(CancellationToken.None);
        Assert.NotEqual(default, channel.ChannelId);
    }

    [Fact]
    public async Task A_client_running_as_another_uid_is_refused_on_both_sockets()
    {
        // 0755 so uid 65534 can reach the sockets; gid 0 gives it the group permission of the 0660 sockets. Only the
        // SO_PEERCRED check stands between it and the provider.
        await using var provider = await DirectoryProviderProcess.StartAsync(
            (UnixFileMode)0b111_101_101);
        const string script = InteropTests.GetProviderInfoScript + """

            import socket
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.settimeout(10)
            s.connect(sys.argv[1] + ".fds")
            hello = s.recv(128)
            print(json.dumps({"hello": len(hello)}))
            """;
        string[] asNobody = ["setpriv", "--reuid=65534", "--regid=0", "--clear-groups", "--"];

        var refused = await PythonClient.RunAsync(script, [provider.Endpoint.SocketPath], asNobody);
        var allowed = await PythonClient.RunAsync(script, [provider.Endpoint.SocketPath]);

        string[] refusedLines = refused.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(refusedLines.Length == 2, refused.Stdout + refused.Stderr);
        Assert.Contains("\"ok\": false", refusedLines[0], StringComparison.Ordinal);
        Assert.Equal("{\"hello\": 0}", refusedLines[1]);
        string[] allowedLines = allowed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(allowedLines.Length == 2, allowed.Stdout + allowed.Stderr);
        Assert.Contains("\"ok\": true", allowedLines[0], StringComparison.Ordinal);
        Assert.Equal("{\"hello\": 24}", allowedLines[1]);
        Assert.Contains("Refused a connection to the gRPC socket from pid", provider.Process.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fds_travel_host_to_provider_and_provider_to_host_through_the_sdk()
    {
        await using var provider = await InProcessProvider.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        using var directory = new TempDirectory();
        string log = directory.File("task.log");
        await File.WriteAllTextAsync(log, "INFO: backup finished\n");
        string volume = directory.File("volume.raw");
        byte[] volumeBytes = Encoding.ASCII.GetBytes("restored volume bytes");
        await File.WriteAllBytesAsync(volume, volumeBytes);
        provider.Restore.VolumeFile = volume;

        // Host to provider: a log file for BackupHandleLogFile.
        using (var logHandle = File.OpenHandle(log))
        {
            var refs = await connection.SendFdsAsync([new FdToSend(logHandle, Transport.FdKind.File)], CancellationToken.None);
            await connection.Backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = "b", LogFile = refs[0] });
        }
        // Provider to host: a volume for RestoreVmVolumeInit, on the channel the host names.
        FdChannel channel = await connection.GetFdChannelAsync(CancellationToken.None);
        var response = await connection.Restore.RestoreVmVolumeInitAsync(new RestoreVmVolumeInitRequest
        {
            RestoreId = "r", ArchiveName = "a", DeviceName = "drive-scsi0",
            FdChannelId = Google.Protobuf.ByteString.CopyFrom(channel.ChannelId.ToByteArray()),
        });
        using PassedFd passed = await connection.ClaimFdAsync(response.Fd, CancellationToken.None);
        using var stream = new FileStream(passed.TakeFileHandle(), FileAccess.Read);
        byte[] read = new byte[volumeBytes.Length];
        await stream.ReadExactlyAsync(read);

        Assert.True(provider.Backup.ReceivedLogs.TryDequeue(out string? receivedLog));
        Assert.Equal("INFO: backup finished\n", receivedLog);
        Assert.Equal(volumeBytes, read);
    }

    [Fact]
    public async Task Claiming_an_fd_that_was_never_sent_fails_with_the_contract_reason()
    {
        await using var provider = await InProcessProvider.StartAsync(configureOptions: o => o.FdClaimWait = TimeSpan.FromMilliseconds(100));
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        var bogus = FdToken.NewRandom().ToFdRef(0, Transport.FdKind.File);

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await connection.Backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = "b", LogFile = bogus }));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal(ErrorReason.FdTransferUnknown, error.GetReason());
    }
}
