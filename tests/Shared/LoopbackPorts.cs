using System.Net;
using System.Net.Sockets;

namespace Grpc.Backup.Tests.Shared;

/// <summary>TCP ports on 127.0.0.1 for the servers a test starts.</summary>
internal static class LoopbackPorts
{
    /// <summary>A port nothing listens on right now (the kernel's choice; a server that then loses the race fails to bind).</summary>
    public static int Free()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }
}
