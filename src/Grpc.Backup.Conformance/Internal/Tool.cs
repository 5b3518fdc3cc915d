using Grpc.Backup.Transport;

namespace Grpc.Backup.Conformance.Internal;

/// <summary>Runs a system tool (qemu-img, chown, find, umount) and fails with its stderr when it exits non-zero.</summary>
internal static class Tool
{
    public static async Task<string> RunAsync(string file, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        try
        {
            return await ExternalProcess.RunAsync(file, arguments, cancellationToken);
        }
        catch (ExternalProcessException e)
        {
            throw new InvalidOperationException(e.Message, e);
        }
    }
}
