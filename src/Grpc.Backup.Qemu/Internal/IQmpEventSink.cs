namespace Grpc.Backup.Qemu.Internal;

/// <summary>Something that receives events from <see cref="QmpEventDispatcher"/>.</summary>
internal interface IQmpEventSink
{
    /// <summary>Called on the reader loop; must not block.</summary>
    void OnEvent(QmpEvent qmpEvent);

    /// <summary>Called once when the connection ends; no events follow.</summary>
    void OnClosed(QmpConnectionClosedException reason);
}
