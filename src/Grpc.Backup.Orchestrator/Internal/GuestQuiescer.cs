using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Holds the guest still around the copy-before-write switch, so every disk is captured at one instant: a guest-agent
/// fs-freeze when the agent answers (application-consistent), else QMP stop/cont (crash-consistent), else nothing
/// (qemu-storage-daemon has no run state; the bitmap order still loses no write). The freeze is always thawed.
/// </summary>
internal sealed class GuestQuiescer(QmpClient qmp, string? agentSocket, TimeSpan agentTimeout, TaskLog log)
{
    public Consistency Achieved { get; private set; } = Consistency.Crash;

    /// <summary>Holds the guest; null when nothing could hold it (the switch then runs unquiesced).</summary>
    public async Task<IAsyncDisposable?> QuiesceAsync(CancellationToken cancellationToken)
    {
        if (agentSocket is not null)
        {
            GuestAgentClient? agent = null;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(agentTimeout);
                agent = await GuestAgentClient.ConnectAsync(agentSocket, timeout.Token);
                int frozen = await agent.FreezeAsync(timeout.Token);
                log.Info($"guest agent froze {frozen} filesystem(s)");
                Achieved = Consistency.Application;
                return new Thaw(agent, agentTimeout, log);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or QmpException
                && cancellationToken.IsCancellationRequested && agent is not null)
            {
                // The backup was cancelled while the freeze was in flight: the guest may finish freezing after we
                // stopped waiting, and a guest left frozen hangs its applications. Thaw on every path.
                await new Thaw(agent, agentTimeout, log).DisposeAsync();
                throw;
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or QmpException
                && !cancellationToken.IsCancellationRequested)
            {
                log.Warn($"guest agent did not freeze ({e.Message}); falling back to a crash-consistent switch");
                if (agent is not null)
                {
                    // A freeze that timed out may still complete in the guest: thaw is always sent.
                    await new Thaw(agent, agentTimeout, log).DisposeAsync();
                }
            }
        }
        try
        {
            var status = await qmp.ExecuteAsync("query-status", cancellationToken: cancellationToken);
            if ((string?)status?["status"] != "running")
            {
                // Already paused: it stays paused, and the instant is consistent as it is.
                log.Info($"guest is {(string?)status?["status"]}; no pause needed");
                return new Nothing();
            }
            await qmp.ExecuteAsync("stop", cancellationToken: cancellationToken);
            log.Info("guest paused for the switch");
            return new Resume(qmp);
        }
        catch (QmpCommandException e) when (e.ErrorClass == QmpErrorClass.CommandNotFound)
        {
            log.Warn("the guest's QEMU has no run state (qemu-storage-daemon); disks switch unquiesced, one after another");
            return null;
        }
    }

    private sealed class Thaw(GuestAgentClient agent, TimeSpan timeout, TaskLog log) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                using var cts = new CancellationTokenSource(timeout);
                await agent.ThawAsync(cts.Token);
                log.Info("guest agent thawed");
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or QmpException)
            {
                log.Error($"guest agent thaw failed: {e.Message}");
            }
            finally
            {
                await agent.DisposeAsync();
            }
        }
    }

    private sealed class Resume(QmpClient qmp) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await qmp.ExecuteAsync("cont");
    }

    private sealed class Nothing : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
