using System.Runtime.InteropServices;
using System.Text;
using Grpc.Backup.Transport.Internal.Interop;

namespace Grpc.Backup.Transport.Internal;

/// <summary>The type and identity (device, inode) of a path itself, symlinks not followed.</summary>
internal readonly record struct FileIdentity(ushort FileType, uint DeviceMajor, uint DeviceMinor, ulong Inode)
{
    public bool IsSocket => FileType == StatxBuffer.Socket;

    /// <summary>statx with AT_SYMLINK_NOFOLLOW; false with the errno when the path cannot be examined.</summary>
    public static unsafe bool TryGet(string path, out FileIdentity identity, out int errno)
    {
        byte[] nativePath = Encoding.UTF8.GetBytes(path + "\0");
        StatxBuffer buffer = default;
        fixed (byte* pathPointer = nativePath)
        {
            if (Libc.statx(Libc.AtFdcwd, pathPointer, Libc.AtSymlinkNofollow, Libc.StatxType | Libc.StatxIno, &buffer) != 0)
            {
                errno = Marshal.GetLastPInvokeError();
                identity = default;
                return false;
            }
        }

        errno = 0;
        identity = new FileIdentity(buffer.FileType, buffer.DeviceMajor, buffer.DeviceMinor, buffer.Inode);
        return true;
    }
}
