namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>What a run did, so its report shows the fuzzer reached the places it claims to.</summary>
internal sealed class FuzzStats
{
    private long _options;
    private long _transmissions;
    private long _requests;
    private long _succeeded;
    private long _refused;
    private long _closedByGuard;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _answers = new();

    public void Option() => Interlocked.Increment(ref _options);

    public void Transmission() => Interlocked.Increment(ref _transmissions);

    public void Request() => Interlocked.Increment(ref _requests);

    public void Answered(FuzzRequest request, int error)
    {
        Interlocked.Increment(ref error == 0 ? ref _succeeded : ref _refused);
        _answers.AddOrUpdate($"{request.Name} {(error == 0 ? "ok" : $"errno {error}")}", 1, (_, n) => n + 1);
    }

    public void ClosedByGuard() => Interlocked.Increment(ref _closedByGuard);

    public override string ToString() =>
        $"{_options} options, {_transmissions} connections in transmission, {_requests} requests sent ({_succeeded} succeeded and {_refused} refused as judged), " +
        $"{_closedByGuard} connections the guard had to close; answers: {string.Join(", ", _answers.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key}: {a.Value}"))}";
}
