using Grpc.Backup.Protocol;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Polly;
using Polly.CircuitBreaker;

namespace Grpc.Backup.Host.Internal;

/// <summary>
/// Retries a unary call that failed with UNAVAILABLE only when the contract marks the RPC IDEMPOTENT or
/// NO_SIDE_EFFECTS (read from the proto's idempotency_level), and routes every call through one circuit breaker per
/// provider, so a dead provider fails fast instead of tying up every job. HTTP-level Polly handlers cannot do this:
/// gRPC failures arrive as HTTP 200 with a status in the trailers.
/// </summary>
internal sealed class ResilienceInterceptor(ProviderResilience resilience) : Interceptor
{
    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        bool retryable = MethodIdempotency.IsIdempotent(context.Method.FullName);
        var attempts = new AttemptTracker<TResponse>();
        Task<TResponse> response = resilience.ExecuteUnaryAsync(retryable, async () =>
        {
            AsyncUnaryCall<TResponse> call = continuation(request, context);
            attempts.Track(call);
            return await call.ResponseAsync;
        }, context.Options.CancellationToken);
        return new AsyncUnaryCall<TResponse>(response, attempts.GetHeadersAsync(response), attempts.GetStatus,
            attempts.GetTrailers, attempts.Dispose);
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
    {
        // Streaming calls move data and are never retried; an open circuit still stops them before they start.
        resilience.ThrowIfOpen();
        return continuation(request, context);
    }

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation)
    {
        resilience.ThrowIfOpen();
        return continuation(context);
    }

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation)
    {
        resilience.ThrowIfOpen();
        return continuation(context);
    }

    /// <summary>Remembers the latest attempt, whose headers, status and trailers the caller sees.</summary>
    private sealed class AttemptTracker<TResponse>
    {
        private AsyncUnaryCall<TResponse>? _current;

        public void Track(AsyncUnaryCall<TResponse> call)
        {
            Interlocked.Exchange(ref _current, call)?.Dispose();
        }

        public async Task<Metadata> GetHeadersAsync(Task<TResponse> response)
        {
            try
            {
                await response;
            }
            catch (RpcException)
            {
                // Headers of a failed call are still those of its last attempt.
            }
            return _current is { } call ? await call.ResponseHeadersAsync : [];
        }

        public Status GetStatus() => _current?.GetStatus() ?? new Status(StatusCode.Unavailable, "the call never reached the provider");

        public Metadata GetTrailers() => _current?.GetTrailers() ?? [];

        public void Dispose() => _current?.Dispose();
    }
}
