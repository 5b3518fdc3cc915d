using Grpc.Backup.Qemu;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// A test's own QMP monitor on a qemu-system-x86_64 VM (the host's backup uses the other one): the run state, and the
/// run-state events (STOP, RESUME, SHUTDOWN, RESET, POWERDOWN) in the order they happened.
/// </summary>
internal sealed class RunStateObserver : IAsyncDisposable
{
    private readonly QmpClient _qmp;
    private readonly QmpEventSubscription _events;

    private RunStateObserver(QmpClient qmp)
    {
        _qmp = qmp;
        _events = qmp.SubscribeEvents();
    }

    public static async Task<RunStateObserver> ConnectAsync(string socket) => new(await QmpClient.ConnectAsync(socket));

    public async Task<string> StatusAsync() => (string)(await _qmp.ExecuteAsync("query-status"))!["status"]!;

    /// <summary>The run-state events seen since the last call, in order.</summary>
    public List<string> DrainEvents()
    {
        var names = new List<string>();
        while (_events.Reader.TryRead(out QmpEvent? e))
        {
            if (e.Name is "STOP" or "RESUME" or "SHUTDOWN" or "RESET" or "POWERDOWN")
            {
                names.Add(e.Name);
            }
        }
        return names;
    }

    public async ValueTask DisposeAsync()
    {
        _events.Dispose();
        await _qmp.DisposeAsync();
    }
}
