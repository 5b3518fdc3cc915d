namespace Grpc.Backup.Transport.Tests.Support;

internal static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> for up to 5 s; returns its last value.</summary>
    public static async Task<bool> True(Func<bool> condition)
    {
        for (int i = 0; i < 250; i++)
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
