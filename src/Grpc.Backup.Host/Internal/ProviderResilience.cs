using Grpc.Core;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Grpc.Backup.Host.Internal;

/// <summary>The Polly pipelines of one provider: a retry for idempotent calls around one shared circuit breaker.</summary>
internal sealed class ProviderResilience
{
    private readonly ResiliencePipeline _breaker;
    private readonly ResiliencePipeline _retryThenBreaker;
    private readonly CircuitBreakerStateProvider _breakerState = new();
    private readonly string _providerLabel;

    public ProviderResilience(string providerLabel, ProviderConnectionOptions options, TimeProvider timeProvider)
    {
        _providerLabel = providerLabel;
        _breaker = new ResiliencePipelineBuilder { TimeProvider = timeProvider }
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<RpcException>(IsTransportFailure),
                FailureRatio = options.BreakerFailureRatio,
                MinimumThroughput = options.BreakerMinimumThroughput,
                SamplingDuration = options.BreakerSamplingDuration,
                BreakDuration = options.BreakerBreakDuration,
                StateProvider = _breakerState,
            })
            .Build();
        // One pipeline for idempotent calls: each retry attempt passes through the shared breaker, so attempts count
        // toward it and an open circuit ends the retries.
        _retryThenBreaker = options.MaxRetries == 0 ? _breaker : new ResiliencePipelineBuilder { TimeProvider = timeProvider }
            .AddRetry(new RetryStrategyOptions
            {
                // Only UNAVAILABLE: the request did not run, or ran on a provider that is going away. An open circuit
                // (BrokenCircuitException) is not retried: that is the point of the breaker.
                ShouldHandle = new PredicateBuilder().Handle<RpcException>(e => e.StatusCode == StatusCode.Unavailable),
                MaxRetryAttempts = options.MaxRetries,
                Delay = options.RetryBaseDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
            })
            .AddPipeline(_breaker)
            .Build();
    }

    public CircuitState CircuitState => _breakerState.CircuitState;

    public async Task<T> ExecuteUnaryAsync<T, TState>(bool retryable, Func<TState, Task<T>> attempt, TState state,
        CancellationToken cancellationToken)
    {
        try
        {
            ResiliencePipeline pipeline = retryable ? _retryThenBreaker : _breaker;
            return await pipeline.ExecuteAsync(static async (s, _) => await s.attempt(s.state), (attempt, state), cancellationToken);
        }
        catch (BrokenCircuitException e)
        {
            throw OpenCircuit(e);
        }
    }

    public void ThrowIfOpen()
    {
        if (_breakerState.CircuitState is CircuitState.Open or CircuitState.Isolated)
        {
            throw OpenCircuit(null);
        }
    }

    private RpcException OpenCircuit(Exception? inner) => new(new Status(StatusCode.Unavailable,
        $"provider {_providerLabel} failed repeatedly; its circuit is open and calls fail fast until it recovers", inner));

    private static bool IsTransportFailure(RpcException e) =>
        e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded;
}
