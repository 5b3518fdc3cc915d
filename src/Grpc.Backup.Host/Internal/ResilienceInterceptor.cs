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
        var attempts = new AttemptTracker<TRequest, TResponse>(request, context, continuation);
        Task<TResponse> response = resilience.ExecuteUnaryAsync(retryable, static a => a.RunAttemptAsync(), attempts,
            context.Options.CancellationToken);
        attempts.Response = response;
        return new AsyncUnaryCall<TResponse>(response, static s => ((AttemptTracker<TRequest, TResponse>)s).GetHeadersAsync(),
            static s => ((AttemptTracker<TRequest, TResponse>)s).GetStatus(),
            static s => ((AttemptTracker<TRequest, TResponse>)s).GetTrailers(),
            static s => ((AttemptTracker<TRequest, TResponse>)s).Dispose(), attempts);
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

    /// <summary>Starts attempts and remembers the latest, whose headers, status and trailers the caller sees.</summary>
    private sealed class AttemptTracker<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
        where TRequest : class
        where TResponse : class
    {
        private AsyncUnaryCall<TResponse>? _current;

        public Task<TResponse>? Response { get; set; }

        public Task<TResponse> RunAttemptAsync()
        {
            AsyncUnaryCall<TResponse> call = continuation(request, context);
            Interlocked.Exchange(ref _current, call)?.Dispose();
            return call.ResponseAsync;
        }

        // Built only when a caller asks for headers, which the host rarely does.
        public async Task<Metadata> GetHeadersAsync()
        {
            try
            {
                if (Response is not null)
                {
                    await Response;
                }
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
