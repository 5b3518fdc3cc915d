namespace Grpc.Backup.Transport.Tests.Support;

internal static class Eventually
{
    /// <summary>
    /// Polls <paramref name="condition"/> until it holds, for up to 60 s (a bound for a stuck test, not a timing
    /// assumption: a starved machine must not fail it); returns its last value.
    /// </summary>
    public static async Task<bool> True(Func<bool> condition)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (condition())
            {
                return true;
            }

            await Task.Delay(20);
        }

        return condition();
    }
}
