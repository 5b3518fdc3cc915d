using System.Runtime.InteropServices;

namespace Grpc.Backup.Transport.Internal;

/// <summary>The checks every sender applies to the fds of one TRANSFER before anything is sent.</summary>
internal static class TransferContents
{
    /// <exception cref="ArgumentException">No fds, more than 64, or an invalid handle or kind.</exception>
    public static (FdKind[] Kinds, SafeHandle[] Handles) Check(IReadOnlyList<FdToSend> fds)
    {
        ArgumentNullException.ThrowIfNull(fds);
        if (fds.Count is < 1 or > FdPacket.MaxFds)
        {
            throw new ArgumentException($"A transfer carries 1 to {FdPacket.MaxFds} fds, not {fds.Count}.", nameof(fds));
        }

        var kinds = new FdKind[fds.Count];
        var handles = new SafeHandle[fds.Count];
        for (int i = 0; i < fds.Count; i++)
        {
            FdToSend fd = fds[i] ?? throw new ArgumentException($"fds[{i}] is null.", nameof(fds));
            if (fd.Handle is null || fd.Handle.IsInvalid || fd.Handle.IsClosed)
            {
                throw new ArgumentException($"fds[{i}] has no open handle.", nameof(fds));
            }

            if (!Enum.IsDefined(fd.Kind))
            {
                throw new ArgumentException($"fds[{i}] has the unknown kind {(int)fd.Kind}.", nameof(fds));
            }

            kinds[i] = fd.Kind;
            handles[i] = fd.Handle;
        }

        return (kinds, handles);
    }
}
