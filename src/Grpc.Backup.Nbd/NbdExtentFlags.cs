namespace Grpc.Backup.Nbd;

/// <summary>Meaning of <see cref="NbdExtent.Flags"/> for the well-known metadata contexts.</summary>
public static class NbdExtentFlags
{
    /// <summary><c>base:allocation</c>: the range is not allocated on the server (NBD_STATE_HOLE).</summary>
    public const uint Hole = 1;

    /// <summary><c>base:allocation</c>: the range reads as zeroes (NBD_STATE_ZERO).</summary>
    public const uint Zero = 2;

    /// <summary><c>qemu:dirty-bitmap:NAME</c>: the range is dirty in the bitmap.</summary>
    public const uint Dirty = 1;
}
