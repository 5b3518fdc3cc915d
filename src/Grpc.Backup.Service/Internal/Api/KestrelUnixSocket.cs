using Grpc.Backup.Transport;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Grpc.Backup.Service.Internal.Api;

/// <summary>
/// Hands a socket bound by <see cref="UnixListeningSocket"/> (mode set before listen) to Kestrel, which then owns
/// the fd: the managed wrapper lets go of it without closing it. The service's one way of serving a Unix socket.
/// </summary>
internal static class KestrelUnixSocket
{
    public static void Listen(KestrelServerOptions kestrel, UnixListeningSocket socket, Action<ListenOptions> configure)
    {
        ulong handle = (ulong)socket.Socket.SafeHandle.DangerousGetHandle();
        socket.Socket.SafeHandle.SetHandleAsInvalid();
        kestrel.ListenHandle(handle, configure);
    }
}
