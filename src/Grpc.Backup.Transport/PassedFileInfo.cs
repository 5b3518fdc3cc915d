using System.Runtime.InteropServices;
using Grpc.Backup.Transport.Internal.Interop;

namespace Grpc.Backup.Transport;

/// <summary>
/// What an open fd refers to, read with statx on the fd itself (never a path, so it cannot be swapped between the
/// check and the use): its kind, owner and size. The host uses it to judge restore sources a provider hands over.
/// </summary>
public readonly record struct PassedFileInfo(FdKind? Kind, uint OwnerUid, ulong Size)
{
    public static unsafe PassedFileInfo Get(SafeHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            StatxBuffer buffer = default;
            byte empty = 0;
            if (Libc.statx((int)handle.DangerousGetHandle(), &empty, Libc.AtEmptyPath,
                Libc.StatxType | Libc.StatxUid | Libc.StatxSize, &buffer) != 0)
            {
                throw new IOException($"statx on a passed fd failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }
            FdKind? kind = buffer.FileType switch
            {
                StatxBuffer.Regular => FdKind.File,
                StatxBuffer.BlockDevice => FdKind.BlockDevice,
                StatxBuffer.Fifo => FdKind.Pipe,
                StatxBuffer.Socket => FdKind.NbdSocket,
                _ => null,
            };
            return new PassedFileInfo(kind, buffer.Uid, buffer.Size);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }
}
