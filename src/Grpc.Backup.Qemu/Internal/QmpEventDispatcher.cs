namespace Grpc.Backup.Qemu.Internal;

/// <summary>
/// Fans events out to waiters and subscriptions. Registration is synchronous, so a sink added
/// before a command is sent is guaranteed to see every event the command triggers.
/// </summary>
internal sealed class QmpEventDispatcher
{
    private readonly Lock _lock = new();

    // Copy-on-write: dispatch iterates a snapshot without holding the lock, so sinks may
    // unregister themselves from inside OnEvent.
    private IQmpEventSink[] _sinks = [];
    private QmpConnectionClosedException? _closed;

    public void Add(IQmpEventSink sink)
    {
        QmpConnectionClosedException? closed;
        lock (_lock)
        {
            closed = _closed;
            if (closed is null)
            {
                _sinks = [.. _sinks, sink];
                return;
            }
        }

        sink.OnClosed(closed.Clone());
    }

    public void Remove(IQmpEventSink sink)
    {
        lock (_lock)
        {
            int index = Array.IndexOf(_sinks, sink);
            if (index >= 0)
            {
                _sinks = [.. _sinks.AsSpan(0, index), .. _sinks.AsSpan(index + 1)];
            }
        }
    }

    public void Dispatch(QmpEvent qmpEvent)
    {
        foreach (IQmpEventSink sink in Volatile.Read(ref _sinks))
        {
            sink.OnEvent(qmpEvent);
        }
    }

    public void Close(QmpConnectionClosedException reason)
    {
        IQmpEventSink[] sinks;
        lock (_lock)
        {
            if (_closed is not null)
            {
                return;
            }

            _closed = reason;
            sinks = _sinks;
            _sinks = [];
        }

        foreach (IQmpEventSink sink in sinks)
        {
            sink.OnClosed(reason.Clone());
        }
    }
}
