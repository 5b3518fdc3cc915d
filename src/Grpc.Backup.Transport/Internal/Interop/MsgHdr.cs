using System.Runtime.InteropServices;

namespace Grpc.Backup.Transport.Internal.Interop;

/// <summary>struct msghdr; sequential layout with natural alignment matches the C ABI on Linux.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MsgHdr
{
    public void* Name;
    public uint NameLength;
    public IoVec* Iov;
    public nuint IovLength;
    public void* Control;
    public nuint ControlLength;
    public int Flags;
}
