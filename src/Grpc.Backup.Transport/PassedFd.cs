using System.Net.Sockets;
using Grpc.Backup.Transport.Internal;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Transport;

/// <summary>
/// A received fd that has been claimed and checked against its kind. The claimer owns it:
/// either take it out (<see cref="TakeFileHandle"/>, <see cref="TakeSocket"/>) or dispose this
/// object, which closes it. Passed fds share the open file description with the sender's copy
/// (offset, O_NONBLOCK): use positional I/O and set your own flags.
/// </summary>
public sealed class PassedFd : IDisposable
{
    private SafeFileHandle? _handle;

    internal PassedFd(SafeFileHandle handle, FdKind kind, FdToken token, int index)
    {
        _handle = handle;
        Kind = kind;
        Token = token;
        Index = index;
    }

    /// <summary>The kind the fd was checked against.</summary>
    public FdKind Kind { get; }

    /// <summary>The transfer that carried the fd.</summary>
    public FdToken Token { get; }

    /// <summary>The fd's index in its transfer.</summary>
    public int Index { get; }

    /// <summary>The fd number in this process, for handing to native code; valid while this object owns it.</summary>
    /// <exception cref="ObjectDisposedException">The fd was taken or closed.</exception>
    public int DangerousFdNumber => (int)Handle.DangerousGetHandle();

    private SafeFileHandle Handle => _handle ?? throw new ObjectDisposedException(nameof(PassedFd), "The fd was taken or closed.");

    /// <summary>Takes the fd as a file handle; the caller owns it from now on.</summary>
    /// <exception cref="ObjectDisposedException">The fd was taken or closed.</exception>
    public SafeFileHandle TakeFileHandle() =>
        Interlocked.Exchange(ref _handle, null) ?? throw new ObjectDisposedException(nameof(PassedFd), "The fd was taken or closed.");

    /// <summary>
    /// Takes the fd as a <see cref="Socket"/> (for NBD sockets); the caller owns it from now on.
    /// </summary>
    /// <exception cref="InvalidOperationException">The fd is not a socket; it stays owned by this object.</exception>
    /// <exception cref="ObjectDisposedException">The fd was taken or closed.</exception>
    public Socket TakeSocket()
    {
        if (FdKindCheck.GetSocketType(DangerousFdNumber) < 0)
        {
            throw new InvalidOperationException($"Fd {Index} of transfer {Token} is not a socket.");
        }

        SafeFileHandle file = TakeFileHandle();

        // Move the fd from one owning wrapper to the other without a window in which both, or
        // neither, would close it.
        nint fd = file.DangerousGetHandle();
        file.SetHandleAsInvalid();
        var socketHandle = new SafeSocketHandle(fd, ownsHandle: true);
        try
        {
            return new Socket(socketHandle);
        }
        catch
        {
            socketHandle.Dispose();
            throw;
        }
    }

    /// <summary>Closes the fd unless it was taken.</summary>
    public void Dispose() => Interlocked.Exchange(ref _handle, null)?.Dispose();
}
