using System.Runtime.InteropServices;

namespace Grpc.Backup.Containers.Internal.Interop;

/// <summary>struct pollfd.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    public int Fd;
    public short Events;
    public short Revents;
}
