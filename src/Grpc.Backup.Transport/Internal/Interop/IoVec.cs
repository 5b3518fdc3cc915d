using System.Runtime.InteropServices;

namespace Grpc.Backup.Transport.Internal.Interop;

/// <summary>struct iovec.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoVec
{
    public void* Base;
    public nuint Length;
}
