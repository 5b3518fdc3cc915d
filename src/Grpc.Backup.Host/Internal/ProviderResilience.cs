using Grpc.Core;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Grpc.Backup.Host.Internal;

/// <summary>The Polly pipelines of one provider: a retry for idempotent calls around one shared circuit breaker.</summary>
internal sealed class ProviderResilience
{
    private readonly ResiliencePipeline _breaker;
    private readonly ResiliencePipeline _retry;
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
        _retry = options.MaxRetries == 0 ? ResiliencePipeline.Empty : new ResiliencePipelineBuilder { TimeProvider = timeProvider }
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
            .Build();
    }

    public CircuitState CircuitState => _breakerState.CircuitState;

    public async Task<T> ExecuteUnaryAsync<T>(bool retryable, Func<Task<T>> attempt, CancellationToken cancellationToken)
    {
        try
        {
            if (!retryable)
            {
                return await _breaker.ExecuteAsync(async _ => await attempt(), cancellationToken);
            }
            return await _retry.ExecuteAsync(
                async ct => await _breaker.ExecuteAsync(async _ => await attempt(), ct), cancellationToken);
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
