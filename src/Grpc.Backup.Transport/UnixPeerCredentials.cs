using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Grpc.Backup.Transport;

/// <summary>
/// The credentials the kernel recorded for the peer of a Unix socket when it connected
/// (SO_PEERCRED). The pid may be reused after the peer exits; the uid is what policy decides on.
/// </summary>
/// <param name="ProcessId">The peer's pid at connect time.</param>
/// <param name="UserId">The peer's effective uid at connect time.</param>
/// <param name="GroupId">The peer's effective gid at connect time.</param>
public readonly record struct UnixPeerCredentials(int ProcessId, uint UserId, uint GroupId)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    /// <summary>Reads SO_PEERCRED of a connected Unix socket.</summary>
    /// <exception cref="SocketException">The socket is not a connected Unix socket.</exception>
    public static UnixPeerCredentials FromSocket(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);

        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }; .NET has no SocketOptionName for it
        // (dotnet/runtime#71207), but the raw option works.
        Span<byte> ucred = stackalloc byte[12];
        int length = socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
        if (length != ucred.Length)
        {
            throw new SocketException((int)SocketError.ProtocolNotSupported, $"SO_PEERCRED returned {length} bytes, expected 12.");
        }

        return new UnixPeerCredentials(
            MemoryMarshal.Read<int>(ucred),
            MemoryMarshal.Read<uint>(ucred[4..]),
            MemoryMarshal.Read<uint>(ucred[8..]));
    }
}
