using Grpc.Core;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>A cleanup call to a provider that may have died: the host's side is released all the same.</summary>
internal static class ProviderCleanup
{
    public static async Task IgnoringProviderErrorsAsync(Func<Task> cleanup)
    {
        try
        {
            await cleanup();
        }
        catch (RpcException)
        {
            // A provider that died cannot end its session.
        }
    }
}
