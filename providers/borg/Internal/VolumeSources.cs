namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>The opened sources of one BackupVm call, by device; disposes every one, whatever happened.</summary>
internal sealed class VolumeSources : IAsyncDisposable
{
    private readonly Dictionary<string, IVolumeSource> _sources = new(StringComparer.Ordinal);

    public IVolumeSource this[string device] => _sources[device];

    public void Add(string device, IVolumeSource source) => _sources.Add(device, source);

    public async ValueTask DisposeAsync()
    {
        foreach (IVolumeSource source in _sources.Values)
        {
            await source.DisposeAsync();
        }
        _sources.Clear();
    }
}
