namespace Grpc.Backup.Host;

/// <summary>How the host talks to one provider.</summary>
public sealed class ProviderConnectionOptions
{
    /// <summary>The protocol majors the host speaks; the provider must list one of them.</summary>
    public IReadOnlyList<uint> SupportedMajors { get; init; } = [Protocol.ProtocolVersion.CurrentMajor];

    /// <summary>The deadline put on every unary call that has none, spanning all its retries.</summary>
    public TimeSpan UnaryDeadline { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long the handshake waits for a provider that answers Probe with NOT_READY.</summary>
    public TimeSpan ReadinessTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The pause between probes of a provider that is not ready yet.</summary>
    public TimeSpan ReadinessPollInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Retries of an idempotent call that failed with UNAVAILABLE (attempts = retries + 1).</summary>
    public int MaxRetries { get; init; } = 4;

    /// <summary>The first backoff delay; it doubles, with jitter.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Transport failures within <see cref="BreakerSamplingDuration"/> that open the circuit.</summary>
    public int BreakerMinimumThroughput { get; init; } = 8;

    /// <summary>The failure ratio that opens the circuit.</summary>
    public double BreakerFailureRatio { get; init; } = 0.5;

    /// <summary>The window over which failures are counted.</summary>
    public TimeSpan BreakerSamplingDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit fails calls before it lets one through again.</summary>
    public TimeSpan BreakerBreakDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long the host waits for a provider's fds referenced in a response to arrive.</summary>
    public TimeSpan FdClaimWait { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long connecting the fd sideband may take, HELLO included, and how long one transfer may wait for a provider
    /// that does not read its sideband. The wait holds the lock that serialises the job's other guests, so a silent
    /// provider must not hold it forever.
    /// </summary>
    public TimeSpan SidebandTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long fds the provider sent wait to be claimed before they are closed.</summary>
    public TimeSpan FdTransferTimeToLive { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The clock for deadlines, backoff and the breaker; tests substitute it.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
