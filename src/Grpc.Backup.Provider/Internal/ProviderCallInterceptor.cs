using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Provider.Internal;

/// <summary>
/// Wraps every provider call: its cancellation token also fires at shutdown (so in-flight backups stop and their
/// cleanup runs), and exceptions that are not <see cref="RpcException"/> become INTERNAL, the contract's code for
/// "provider bug", instead of grpc-dotnet's UNKNOWN.
/// </summary>
internal sealed partial class ProviderCallInterceptor(IHostApplicationLifetime lifetime, ILogger<ProviderCallInterceptor> logger)
    : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, linked => continuation(request, linked));

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, linked => continuation(requestStream, linked));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, async linked =>
        {
            await continuation(request, responseStream, linked);
            return true;
        });

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, async linked =>
        {
            await continuation(requestStream, responseStream, linked);
            return true;
        });

    private async Task<T> RunAsync<T>(ServerCallContext context, Func<ServerCallContext, Task<T>> body)
    {
        using var linkedSource = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        var linked = new LinkedServerCallContext(context, linkedSource.Token);
        try
        {
            return await body(linked);
        }
        catch (RpcException)
        {
            throw;
        }
        catch (OperationCanceledException) when (linkedSource.IsCancellationRequested)
        {
            string why = lifetime.ApplicationStopping.IsCancellationRequested ? "the provider is shutting down" : "the call was cancelled";
            throw new RpcException(new Status(
                lifetime.ApplicationStopping.IsCancellationRequested ? StatusCode.Unavailable : StatusCode.Cancelled, why));
        }
        catch (Exception e)
        {
            LogUnhandled(logger, context.Method, e);
            throw new RpcException(new Status(StatusCode.Internal, $"provider error in {context.Method}: {e.Message}"));
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled exception in {Method}")]
    private static partial void LogUnhandled(ILogger logger, string method, Exception exception);
}
