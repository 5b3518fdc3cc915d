using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Grpc.Backup.Nbd.Internal;

internal static class SocketExtensions
{
    /// <summary>
    /// Sends the whole buffer. A stream socket may accept fewer bytes than offered, and a
    /// short request would desynchronise the protocol stream.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public static async ValueTask SendAllAsync(this Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None, cancellationToken);
            data = data[sent..];
        }
    }
}
