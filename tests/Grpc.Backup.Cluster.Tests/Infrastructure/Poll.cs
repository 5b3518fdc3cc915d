namespace Grpc.Backup.Cluster.Tests.Infrastructure;

/// <summary>Waits for a state by looking again and again, with a generous bound (no sleep stands in for a state).</summary>
internal static class Poll
{
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan bound, string what)
    {
        DateTime deadline = DateTime.UtcNow + bound;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what} did not happen within {bound.TotalSeconds} s");
            }
            await Task.Delay(50);
        }
    }
}
