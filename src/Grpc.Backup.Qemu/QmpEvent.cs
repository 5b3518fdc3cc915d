using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu;

/// <summary>An asynchronous QMP event such as <c>BLOCK_JOB_COMPLETED</c> or <c>SHUTDOWN</c>.</summary>
public sealed class QmpEvent
{
    public QmpEvent(string name, JsonObject data, DateTimeOffset timestamp)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(data);
        Name = name;
        Data = data;
        Timestamp = timestamp;
    }

    /// <summary>The event name, e.g. <c>BLOCK_EXPORT_DELETED</c>.</summary>
    public string Name { get; }

    /// <summary>
    /// The event's <c>data</c> member; empty for events without data. The same instance is handed to
    /// every subscriber, so treat it as read-only.
    /// </summary>
    public JsonObject Data { get; }

    /// <summary>
    /// When QEMU emitted the event (host clock). <see cref="DateTimeOffset.MinValue"/> if QEMU could
    /// not read its clock.
    /// </summary>
    public DateTimeOffset Timestamp { get; }

    public override string ToString() => $"{Name} {Data.ToJsonString()}";
}
