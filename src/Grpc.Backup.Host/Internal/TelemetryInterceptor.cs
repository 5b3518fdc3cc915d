using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Grpc.Backup.Host.Internal;

/// <summary>
/// The outermost interceptor: one span and one duration per logical call (retries included), for every call shape.
/// A call disposed before it finished is recorded as cancelled.
/// </summary>
internal sealed class TelemetryInterceptor(string endpoint) : Interceptor
{
    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        RpcCallScope scope = RpcCallScope.Begin(context.Method, endpoint);
        AsyncUnaryCall<TResponse> call = Started(scope, () => continuation(request, context));
        return new AsyncUnaryCall<TResponse>(ObserveAsync(call.ResponseAsync, scope), call.ResponseHeadersAsync, call.GetStatus,
            call.GetTrailers, () => Dispose(scope, call));
    }

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation)
    {
        RpcCallScope scope = RpcCallScope.Begin(context.Method, endpoint);
        AsyncClientStreamingCall<TRequest, TResponse> call = Started(scope, () => continuation(context));
        return new AsyncClientStreamingCall<TRequest, TResponse>(call.RequestStream, ObserveAsync(call.ResponseAsync, scope),
            call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, () => Dispose(scope, call));
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
    {
        RpcCallScope scope = RpcCallScope.Begin(context.Method, endpoint);
        AsyncServerStreamingCall<TResponse> call = Started(scope, () => continuation(request, context));
        return new AsyncServerStreamingCall<TResponse>(new ObservedStreamReader<TResponse>(call.ResponseStream, scope),
            call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, () => Dispose(scope, call));
    }

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation)
    {
        RpcCallScope scope = RpcCallScope.Begin(context.Method, endpoint);
        AsyncDuplexStreamingCall<TRequest, TResponse> call = Started(scope, () => continuation(context));
        return new AsyncDuplexStreamingCall<TRequest, TResponse>(call.RequestStream,
            new ObservedStreamReader<TResponse>(call.ResponseStream, scope), call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers,
            () => Dispose(scope, call));
    }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, BlockingUnaryCallContinuation<TRequest, TResponse> continuation) =>
        throw new NotSupportedException("the host uses the async API only; a blocking call would hold a thread-pool thread");

    private static TCall Started<TCall>(RpcCallScope scope, Func<TCall> start)
    {
        try
        {
            return start();
        }
        catch (Exception e)
        {
            scope.End(e);
            throw;
        }
        finally
        {
            scope.Detach();
        }
    }

    private static async Task<TResponse> ObserveAsync<TResponse>(Task<TResponse> response, RpcCallScope scope)
    {
        try
        {
            TResponse result = await response.ConfigureAwait(false);
            scope.End(null);
            return result;
        }
        catch (Exception e)
        {
            scope.End(e);
            throw;
        }
    }

    private static void Dispose(RpcCallScope scope, IDisposable call)
    {
        scope.End(new OperationCanceledException());
        call.Dispose();
    }
}
