using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Grpc.Backup.Host.Internal;

/// <summary>
/// Puts a deadline on every unary call that has none. It runs outside the retry interceptor, so one deadline spans
/// every attempt. Streaming calls (BackupVm, BackupContainer) run as long as the data takes and are not touched.
/// </summary>
internal sealed class DeadlineInterceptor(TimeSpan unaryDeadline, TimeProvider timeProvider) : Interceptor
{
    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        if (context.Options.Deadline is null)
        {
            DateTime deadline = timeProvider.GetUtcNow().UtcDateTime + unaryDeadline;
            context = new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithDeadline(deadline));
        }
        return continuation(request, context);
    }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, BlockingUnaryCallContinuation<TRequest, TResponse> continuation) =>
        throw new NotSupportedException("the host uses the async API only; a blocking call would hold a thread-pool thread");
}
