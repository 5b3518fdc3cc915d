using System.Net.Sockets;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Core;

namespace Grpc.Backup.Cli;

/// <summary>
/// What a failure that reached the top of a command means for the exit status (<see cref="ExitCodes"/>). Every
/// failure is reported on one line by <see cref="Protocol.ProgramFailure"/>.
/// </summary>
internal static class CliFailure
{
    public static int ExitCodeOf(Exception exception) => exception switch
    {
        AggregateException { InnerExceptions.Count: 1 } aggregate => ExitCodeOf(aggregate.InnerExceptions[0]),
        OperationCanceledException => ExitCodes.Cancelled,
        RpcException rpc => rpc.StatusCode switch
        {
            StatusCode.Unavailable or StatusCode.DeadlineExceeded => ExitCodes.ProviderUnreachable,
            StatusCode.NotFound => ExitCodes.NotFound,
            StatusCode.Cancelled => ExitCodes.Cancelled,
            StatusCode.Internal or StatusCode.Unknown or StatusCode.DataLoss => ExitCodes.Failure,
            // ABORTED, FAILED_PRECONDITION, RESOURCE_EXHAUSTED, PERMISSION_DENIED, INVALID_ARGUMENT, ...: the provider
            // answered and said no.
            _ => ExitCodes.ProviderRefused,
        },
        // The handshake's first call could not be made at all: nothing answered.
        ProviderHandshakeException { InnerException: RpcException { StatusCode: StatusCode.Unavailable } } => ExitCodes.ProviderUnreachable,
        ProviderHandshakeException => ExitCodes.ProviderRefused,
        SocketException or HttpRequestException => ExitCodes.ProviderUnreachable,
        Containers.ArchivePathNotFoundException => ExitCodes.NotFound,
        ConfigException or ArgumentException or FormatException or FileNotFoundException or DirectoryNotFoundException => ExitCodes.Usage,
        BackupException => ExitCodes.Failure,
        _ => ExitCodes.Failure,
    };

    /// <summary>A one-line description that says which side failed, for the failures where that is not obvious.</summary>
    public static string Describe(Exception exception) => exception switch
    {
        RpcException => "the provider failed the call: " + Protocol.ProgramFailure.Describe(exception),
        SocketException or HttpRequestException => "cannot reach the provider: " + Protocol.ProgramFailure.Describe(exception),
        _ => Protocol.ProgramFailure.Describe(exception),
    };
}
