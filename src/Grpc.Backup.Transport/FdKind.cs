namespace Grpc.Backup.Transport;

/// <summary>
/// The kind a sender declares for a passed fd. The numeric values are those of the
/// <c>backup.provider.v1.FdKind</c> proto enum and of the kind bytes on the wire; the
/// transport keeps its own copy so that it does not depend on generated protocol code.
/// </summary>
#pragma warning disable CA1028 // The wire format stores a kind in one byte.
public enum FdKind : byte
#pragma warning restore CA1028
{
    /// <summary>A regular file (FUSE files included).</summary>
    File = 1,

    /// <summary>A block device.</summary>
    BlockDevice = 2,

    /// <summary>A connected stream socket on which the NBD handshake has not run yet.</summary>
    NbdSocket = 3,

    /// <summary>One end of a pipe.</summary>
    Pipe = 4,
}
