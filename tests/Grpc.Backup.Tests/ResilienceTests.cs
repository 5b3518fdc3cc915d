using Grpc.Backup.Host;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;
using Grpc.Core;
using Polly.CircuitBreaker;

namespace Grpc.Backup.Tests;

public sealed class ResilienceTests
{
    private static readonly ProviderConnectionOptions FastRetries = new()
    {
        RetryBaseDelay = TimeSpan.FromMilliseconds(10),
        MaxRetries = 4,
    };

    [Fact]
    public async Task Idempotent_call_is_retried_after_a_transient_unavailable()
    {
        await using var provider = await InProcessProvider.StartAsync();
        provider.Backup.JobInitFailures = 2;
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint, FastRetries);

        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = Guid.NewGuid().ToString() });

        Assert.Equal(3, provider.Backup.JobInitCalls);
    }

    [Fact]
    public async Task Idempotent_call_gives_up_after_the_retry_budget()
    {
        await using var provider = await InProcessProvider.StartAsync();
        provider.Backup.JobInitFailures = 100;
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint, FastRetries);

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await connection.Backup.JobInitAsync(new JobInitRequest { JobId = "job" }));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(1 + FastRetries.MaxRetries, provider.Backup.JobInitCalls);
    }

    [Fact]
    public async Task Non_idempotent_call_is_never_retried()
    {
        await using var provider = await InProcessProvider.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint, FastRetries);

        using var call = connection.Backup.BackupContainer(new BackupContainerRequest { BackupId = "b1" });
        var error = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.MoveNext());

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(1, provider.Backup.BackupContainerCalls);
    }

    [Fact]
    public async Task Circuit_opens_after_repeated_transport_failures_and_then_fails_fast()
    {
        await using var provider = await InProcessProvider.StartAsync();
        provider.Backup.BackupCleanupAlwaysUnavailable = true;
        var options = new ProviderConnectionOptions
        {
            MaxRetries = 0,
            BreakerMinimumThroughput = 3,
            BreakerFailureRatio = 0.5,
            BreakerBreakDuration = TimeSpan.FromMinutes(1),
        };
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint, options);

        for (int i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<RpcException>(async () =>
                await connection.Backup.BackupCleanupAsync(new BackupCleanupRequest { BackupId = "b" }));
        }
        int callsWhenOpened = provider.Backup.BackupCleanupCalls;
        var fastFailure = await Assert.ThrowsAsync<RpcException>(async () =>
            await connection.Backup.BackupCleanupAsync(new BackupCleanupRequest { BackupId = "b" }));

        Assert.Equal(CircuitState.Open, connection.CircuitState);
        Assert.Equal(StatusCode.Unavailable, fastFailure.StatusCode);
        Assert.Contains("circuit is open", fastFailure.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(callsWhenOpened, provider.Backup.BackupCleanupCalls);
    }

    [Fact]
    public async Task Every_unary_call_carries_a_deadline()
    {
        await using var provider = await InProcessProvider.StartAsync();
        var options = new ProviderConnectionOptions { UnaryDeadline = TimeSpan.FromSeconds(42) };
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint, options);
        DateTime before = DateTime.UtcNow;

        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = "job" });
        DateTime after = DateTime.UtcNow;

        // 42 s from the moment the call started, which lies between before and after however slow the machine is
        // (less a little for the wire format's rounding).
        Assert.True(provider.Backup.Deadlines.TryDequeue(out DateTime deadline));
        Assert.InRange(deadline, before.AddSeconds(41.9), after.AddSeconds(42.1));
    }
}
