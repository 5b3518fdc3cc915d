using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// What one recvmsg returned. The fds are wrapped in owning handles the moment they are
/// parsed, so that no path (rejection, protocol error, exception) can leak one: whatever is
/// not taken is closed by <see cref="CloseFds"/>.
/// </summary>
internal sealed class ReceivedPacket
{
    private SafeFileHandle[]? _fds;

    public ReceivedPacket(byte[] data, int messageFlags, SafeFileHandle[] fds, ControlSummary control)
    {
        Data = data;
        MessageFlags = messageFlags;
        _fds = fds;
        FdCount = fds.Length;
        Control = control;
    }

    public byte[] Data { get; }

    public int MessageFlags { get; }

    /// <summary>Every fd of every SCM_RIGHTS message in the packet.</summary>
    public int FdCount { get; }

    public ControlSummary Control { get; }

    /// <summary>Hands the fds over to a new owner.</summary>
    public SafeFileHandle[] TakeFds() =>
        Interlocked.Exchange(ref _fds, null) ?? throw new InvalidOperationException("The fds were taken already.");

    public void CloseFds()
    {
        foreach (SafeFileHandle fd in Interlocked.Exchange(ref _fds, null) ?? [])
        {
            fd.Dispose();
        }
    }
}
