namespace Grpc.Backup.Nbd;

/// <summary>
/// Error values an NBD server reports for a failed command. The protocol fixes these to the
/// Linux errno numbers, so they are stable across server platforms.
/// </summary>
public enum NbdError
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>EPERM: operation not permitted (e.g. write to a read-only export).</summary>
    NotPermitted = 1,

    /// <summary>EIO: input/output error on the server's backing storage.</summary>
    IOError = 5,

    /// <summary>ENOMEM: the server ran out of memory.</summary>
    OutOfMemory = 12,

    /// <summary>EINVAL: invalid argument (bad offset, length, flags or command).</summary>
    InvalidArgument = 22,

    /// <summary>ENOSPC: no space left on device (or a write beyond the end of the export).</summary>
    NoSpace = 28,

    /// <summary>EOVERFLOW: value too large (e.g. an unfragmentable reply that is too big).</summary>
    Overflow = 75,

    /// <summary>ENOTSUP: operation not supported (e.g. a fast zero that cannot be done quickly).</summary>
    NotSupported = 95,

    /// <summary>ESHUTDOWN: the server is shutting down.</summary>
    Shutdown = 108,
}
