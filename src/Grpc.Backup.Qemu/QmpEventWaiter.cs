using System.Text.Json.Nodes;
using Grpc.Backup.Qemu.Internal;

namespace Grpc.Backup.Qemu;

/// <summary>
/// Waits for the first event with a given name (and matching predicate) that arrives after the
/// waiter was created. Create it <em>before</em> sending the command that triggers the event:
/// QEMU often emits the event before the command's reply (e.g. <c>BLOCK_EXPORT_DELETED</c> precedes
/// the reply to <c>block-export-del</c>), so waiting only after the reply would miss it.
/// </summary>
/// <example><code>
/// using QmpEventWaiter deleted = client.CreateEventWaiter("BLOCK_EXPORT_DELETED", d => (string?)d["id"] == "exp0");
/// await client.ExecuteAsync("block-export-del", new JsonObject { ["id"] = "exp0" }, ct);
/// await deleted.WaitAsync(TimeSpan.FromSeconds(30), ct);
/// </code></example>
public sealed class QmpEventWaiter : IDisposable, IQmpEventSink
{
    private readonly QmpEventDispatcher _dispatcher;
    private readonly Func<JsonObject, bool>? _predicate;
    private readonly TaskCompletionSource<QmpEvent> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal QmpEventWaiter(QmpEventDispatcher dispatcher, string eventName, Func<JsonObject, bool>? predicate)
    {
        _dispatcher = dispatcher;
        EventName = eventName;
        _predicate = predicate;
    }

    public string EventName { get; }

    /// <summary>
    /// Completes with the matching event. Faults with <see cref="QmpConnectionClosedException"/> if
    /// the connection ends first, or with the predicate's exception if the predicate throws.
    /// Cancelling <paramref name="cancellationToken"/> abandons this wait only; the waiter stays armed.
    /// </summary>
    public Task<QmpEvent> WaitAsync(CancellationToken cancellationToken = default)
        => _completion.Task.WaitAsync(cancellationToken);

    /// <summary>As <see cref="WaitAsync(CancellationToken)"/>, failing with <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    public Task<QmpEvent> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
        => _completion.Task.WaitAsync(timeout, cancellationToken);

    /// <summary>Stops listening; a wait still in progress is cancelled.</summary>
    public void Dispose()
    {
        _dispatcher.Remove(this);
        _completion.TrySetCanceled();
    }

    void IQmpEventSink.OnEvent(QmpEvent qmpEvent)
    {
        if (_completion.Task.IsCompleted || !string.Equals(qmpEvent.Name, EventName, StringComparison.Ordinal))
        {
            return;
        }

        bool matches;
        try
        {
            matches = _predicate?.Invoke(qmpEvent.Data) ?? true;
        }
#pragma warning disable CA1031 // The predicate is caller code running on the reader loop; its failure belongs to this waiter alone.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _completion.TrySetException(ex);
            _dispatcher.Remove(this);
            return;
        }

        if (matches && _completion.TrySetResult(qmpEvent))
        {
            _dispatcher.Remove(this);
        }
    }

    void IQmpEventSink.OnClosed(QmpConnectionClosedException reason) => _completion.TrySetException(reason);
}
