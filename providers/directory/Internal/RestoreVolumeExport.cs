namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// What RestoreVmVolumeInit set up for one device: the read-only handles it passed (kept open until cleanup, as the
/// sideband's ownership rules ask) or the qemu-nbd serving an overlay chain.
/// </summary>
internal sealed class RestoreVolumeExport : IAsyncDisposable
{
    private readonly List<IDisposable> _handles = [];

    public QemuNbdServer? Server { get; set; }

    public void Keep(IDisposable handle)
    {
        lock (_handles)
        {
            _handles.Add(handle);
        }
    }

    public async ValueTask DisposeAsync()
    {
        lock (_handles)
        {
            foreach (IDisposable handle in _handles)
            {
                handle.Dispose();
            }
            _handles.Clear();
        }
        if (Server is { } server)
        {
            Server = null;
            await server.DisposeAsync();
        }
    }
}
