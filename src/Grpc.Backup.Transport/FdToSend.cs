using System.Runtime.InteropServices;

namespace Grpc.Backup.Transport;

/// <summary>
/// One fd to pass and the kind to declare for it. The sender keeps ownership of
/// <paramref name="Handle"/>: the receiver gets its own copy (as by dup), and the sender closes
/// its handle once the RPC naming the transfer has completed.
/// </summary>
/// <param name="Handle">Any handle wrapping an fd: SafeFileHandle, SafeSocketHandle, SafePipeHandle.</param>
/// <param name="Kind">The kind declared on the wire; the receiver checks it.</param>
public sealed record FdToSend(SafeHandle Handle, FdKind Kind);
