using Grpc.Backup.Management.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Grpc.Backup.Cli;

/// <summary>
/// The connection to grpc-backupd's management socket, and the mapping of its status codes to exit codes, so every
/// service command fails the same way (a message on stderr, a meaningful exit status).
/// </summary>
internal sealed class ServiceClient : IDisposable
{
    private readonly GrpcChannel _channel;

    public ServiceClient(string socketPath)
    {
        SocketPath = socketPath;
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = Host.Internal.UnixSocketHttpHandler.Create(socketPath),
            DisposeHttpClient = true,
        });
        Management = new Management.V1.Management.ManagementClient(_channel);
    }

    public string SocketPath { get; }

    public Management.V1.Management.ManagementClient Management { get; }

    public void Dispose() => _channel.Dispose();

    /// <summary>Runs a command's body; RPC failures become a message and an exit code.</summary>
    public static async Task<int> RunAsync(string socketPath, Func<ServiceClient, Task<int>> body)
    {
        using var client = new ServiceClient(socketPath);
        try
        {
            return await body(client);
        }
        catch (RpcException e)
        {
            await Console.Error.WriteLineAsync($"grpc-backup: {Describe(e, socketPath)}");
            return e.StatusCode switch
            {
                StatusCode.Unavailable when e.Status.Detail.StartsWith("storage ", StringComparison.Ordinal) => ExitCodes.ProviderUnreachable,
                StatusCode.Unavailable or StatusCode.Internal when IsConnectFailure(e) => ExitCodes.ServiceUnreachable,
                StatusCode.NotFound => ExitCodes.NotFound,
                StatusCode.AlreadyExists => ExitCodes.AlreadyRunning,
                StatusCode.InvalidArgument => ExitCodes.Usage,
                StatusCode.Cancelled => ExitCodes.Cancelled,
                _ => ExitCodes.Failure,
            };
        }
    }

    public static int ExitCodeOf(TaskState state) => state switch
    {
        TaskState.Succeeded => ExitCodes.Success,
        TaskState.Cancelled => ExitCodes.Cancelled,
        _ => ExitCodes.Failure,
    };

    private static bool IsConnectFailure(RpcException e) => e.StatusCode == StatusCode.Unavailable && e.Status.DebugException is not null
        || e.Status.DebugException is HttpRequestException;

    private static string Describe(RpcException e, string socketPath) => IsConnectFailure(e)
        ? $"cannot reach the backup service at {socketPath} (is grpc-backupd running, and are you root?): {e.Status.DebugException?.Message ?? e.Status.Detail}"
        : e.Status.Detail;
}
