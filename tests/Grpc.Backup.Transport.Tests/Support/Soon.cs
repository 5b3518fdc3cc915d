namespace Grpc.Backup.Transport.Tests.Support;

internal static class Soon
{
    /// <summary>A token that cancels a test operation hung for 120 s instead of hanging the run (a bound, not a timing assumption).</summary>
    public static CancellationToken Token => new CancellationTokenSource(TimeSpan.FromSeconds(120)).Token;

    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
}
