namespace Grpc.Backup.Transport.Tests.Support;

internal static class Soon
{
    /// <summary>A token that cancels a test operation hung for 20 s instead of hanging the run.</summary>
    public static CancellationToken Token => new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token;

    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
}
