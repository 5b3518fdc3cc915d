using System.Threading.Channels;
using Grpc.Backup.Qemu.Internal;

namespace Grpc.Backup.Qemu;

/// <summary>
/// Receives every event that arrives after it was created, in order. The reader loop never waits
/// for a subscriber: one that falls more than its capacity behind is completed with a
/// <see cref="QmpException"/> instead, so a slow consumer learns it lost events rather than
/// silently missing them or stalling command replies.
/// </summary>
public sealed class QmpEventSubscription : IDisposable, IQmpEventSink
{
    private readonly QmpEventDispatcher _dispatcher;
    private readonly Channel<QmpEvent> _channel;
    private readonly int _capacity;

    internal QmpEventSubscription(QmpEventDispatcher dispatcher, int capacity)
    {
        _dispatcher = dispatcher;
        _capacity = capacity;
        _channel = Channel.CreateBounded<QmpEvent>(new BoundedChannelOptions(capacity)
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails instead of dropping.
        });
    }

    /// <summary>
    /// The events. Completes normally when the subscription is disposed, and with
    /// <see cref="QmpConnectionClosedException"/> when the connection ends.
    /// </summary>
    public ChannelReader<QmpEvent> Reader => _channel.Reader;

    /// <summary>Enumerates <see cref="Reader"/>; see there for how the sequence ends.</summary>
    public IAsyncEnumerable<QmpEvent> ReadAllAsync(CancellationToken cancellationToken = default)
        => _channel.Reader.ReadAllAsync(cancellationToken);

    public void Dispose()
    {
        _dispatcher.Remove(this);
        _channel.Writer.TryComplete();
    }

    void IQmpEventSink.OnEvent(QmpEvent qmpEvent)
    {
        if (!_channel.Writer.TryWrite(qmpEvent)
            && _channel.Writer.TryComplete(new QmpException($"The QMP event subscription fell more than {_capacity} events behind; later events were dropped.")))
        {
            _dispatcher.Remove(this);
        }
    }

    void IQmpEventSink.OnClosed(QmpConnectionClosedException reason) => _channel.Writer.TryComplete(reason);
}
