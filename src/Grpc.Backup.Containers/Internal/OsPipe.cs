using System.ComponentModel;
using System.Runtime.InteropServices;
using Grpc.Backup.Containers.Internal.Interop;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// An anonymous OS pipe as two <see cref="SafeFileHandle"/>s. The read end is what a provider receives (FdKind PIPE);
/// both ends are close-on-exec so no child the host starts inherits them by accident (SCM_RIGHTS still passes them).
/// </summary>
internal static class OsPipe
{
    public static unsafe (SafeFileHandle Read, SafeFileHandle Write) Create()
    {
        int* fds = stackalloc int[2];
        if (Libc.pipe2(fds, Libc.OCloexec) != 0)
        {
            throw new IOException("pipe2 failed", new Win32Exception(Marshal.GetLastPInvokeError()));
        }
        return (new SafeFileHandle(fds[0], ownsHandle: true), new SafeFileHandle(fds[1], ownsHandle: true));
    }
}
