using System.Text.Json.Nodes;
using Grpc.Backup.Qemu.Tests.Infrastructure;

namespace Grpc.Backup.Qemu.Tests;

/// <summary>When QEMU goes away, nothing may hang: every pending and later operation fails promptly.</summary>
public sealed class ConnectionLossTests
{
    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Killing_qemu_fails_the_pending_call_waiters_subscriptions_and_later_calls()
    {
        await using QemuProcess qemu = await StorageDaemonTests.StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();
        using QmpEventWaiter waiter = client.CreateEventWaiter("BLOCK_JOB_COMPLETED");
        using QmpEventSubscription subscription = client.SubscribeEvents();

        // A stopped process cannot answer, so the call is reliably still pending when it dies.
        await qemu.SignalAsync("STOP");
        Task<JsonNode?> pending = client.ExecuteAsync("query-version");
        await Task.Delay(300);
        Assert.False(pending.IsCompleted);

        await qemu.KillAsync();

        var closed = await Assert.ThrowsAsync<QmpConnectionClosedException>(() => pending.WaitAsync(TestTimeouts.Prompt));
        Assert.Contains("closed", closed.Message, StringComparison.OrdinalIgnoreCase);
        await Assert.ThrowsAsync<QmpConnectionClosedException>(() => client.ExecuteAsync("query-version").WaitAsync(TestTimeouts.Prompt));
        await Assert.ThrowsAsync<QmpConnectionClosedException>(() => waiter.WaitAsync(TestTimeouts.Prompt));
        await Assert.ThrowsAsync<QmpConnectionClosedException>(() => subscription.Reader.Completion.WaitAsync(TestTimeouts.Prompt));
        Assert.False(client.IsConnected);

        // Waiting after the fact fails at once too, instead of waiting for an event that cannot come.
        await Assert.ThrowsAsync<QmpConnectionClosedException>(() => client.WaitForEventAsync("SHUTDOWN").WaitAsync(TestTimeouts.Prompt));
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Calls_after_qemu_died_fail_promptly()
    {
        await using QemuProcess qemu = await StorageDaemonTests.StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();
        Assert.NotNull(await client.ExecuteAsync("query-version"));

        await qemu.KillAsync();

        // Whether the send or the read notices first, the outcome must be the same.
        for (int i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<QmpConnectionClosedException>(() => client.ExecuteAsync("query-version").WaitAsync(TestTimeouts.Prompt));
        }
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Quit_delivers_SHUTDOWN_and_then_the_connection_closes()
    {
        await using QemuProcess qemu = await QemuProcess.StartSystemAsync();
        await using QmpClient client = await qemu.ConnectAsync();
        using QmpEventSubscription subscription = client.SubscribeEvents();
        using QmpEventWaiter shutdown = client.CreateEventWaiter("SHUTDOWN");

        await client.ExecuteAsync("quit");

        QmpEvent qmpEvent = await shutdown.WaitAsync(TestTimeouts.Prompt);
        Assert.Equal("host-qmp-quit", (string?)qmpEvent.Data["reason"]);

        var names = new List<string>();
        await Assert.ThrowsAsync<QmpConnectionClosedException>(async () =>
        {
            await foreach (QmpEvent e in subscription.ReadAllAsync().WithCancellation(CancellationToken.None))
            {
                names.Add(e.Name);
            }
        }).WaitAsync(TestTimeouts.Prompt);
        Assert.Equal(["SHUTDOWN"], names);
        await Assert.ThrowsAsync<QmpConnectionClosedException>(() => client.ExecuteAsync("query-status"));
    }
}
