namespace Grpc.Backup.Containers.Tests;

/// <summary>A freezer that records its calls and runs test actions at the moments a real container would be frozen and thawed.</summary>
internal sealed class RecordingFreezer(Action? onFreeze = null, Action? onThaw = null) : IContainerFreezer
{
    private readonly List<string> _calls = [];

    public IReadOnlyList<string> Calls => _calls;

    public Task FreezeAsync(CancellationToken cancellationToken)
    {
        _calls.Add("freeze");
        onFreeze?.Invoke();
        return Task.CompletedTask;
    }

    public Task ThawAsync(CancellationToken cancellationToken)
    {
        _calls.Add("thaw");
        onThaw?.Invoke();
        return Task.CompletedTask;
    }
}
