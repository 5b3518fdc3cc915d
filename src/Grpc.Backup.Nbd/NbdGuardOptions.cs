namespace Grpc.Backup.Nbd;

/// <summary>Settings for <see cref="NbdGuard"/>. Read once, when the guard starts.</summary>
public sealed class NbdGuardOptions
{
    /// <summary>Default for <see cref="MaxRequestSize"/>: the payload limit the NBD protocol tells clients to assume.</summary>
    public const int DefaultMaxRequestSize = 32 * 1024 * 1024;

    /// <summary>Default for <see cref="MaxBytesInFlight"/>.</summary>
    public const int DefaultMaxBytesInFlight = 64 * 1024 * 1024;

    /// <summary>Default for <see cref="DiscardGranularity"/>: QEMU's copy-before-write cluster over a raw fleecing image.</summary>
    public const int DefaultDiscardGranularity = 64 * 1024;

    /// <summary>The Unix socket of the upstream NBD server (QEMU's, or qemu-nbd's); or set <see cref="UpstreamConnector"/>.</summary>
    public string? UpstreamSocketPath { get; init; }

    /// <summary>
    /// Instead of <see cref="UpstreamSocketPath"/>: gives a connected socket to the upstream server for each upstream
    /// connection (a provider's restore export, claimed by the host, where the upstream is the untrusted side and the
    /// guard's client is QEMU). The guard owns each socket it gets.
    /// </summary>
    public Func<CancellationToken, Task<System.Net.Sockets.Socket>>? UpstreamConnector { get; init; }

    /// <summary>The one export the guard serves, under the same name the upstream server uses.</summary>
    public required string ExportName { get; init; }

    /// <summary>
    /// Metadata contexts negotiated with the upstream server and offered to clients (for example
    /// <see cref="NbdMetaContexts.BaseAllocation"/> and a <c>qemu:dirty-bitmap:</c> context). Every one must exist upstream.
    /// </summary>
    public IReadOnlyList<string> MetaContexts { get; init; } = [NbdMetaContexts.BaseAllocation];

    /// <summary>
    /// TRIMs are rounded inward to this power of two (QEMU's copy-before-write filter aborts on a discard that is not
    /// aligned to its cluster), and it is advertised as the preferred block size and, up to the protocol's 64 KiB, as
    /// the minimum. Block status is reported in whole units of the advertised minimum, as the protocol requires.
    /// </summary>
    public int DiscardGranularity { get; init; } = DefaultDiscardGranularity;

    /// <summary>
    /// Overrides the advertised minimum block size (a power of two, at most <see cref="DiscardGranularity"/>). Only for
    /// trusted local clients that cannot align their own requests (nbdfuse serving page-sized reads); TRIM is rounded
    /// to <see cref="DiscardGranularity"/> whatever is advertised.
    /// </summary>
    public int? MinimumBlockSize { get; init; }

    /// <summary>Largest READ a client may send (advertised as the maximum block size); larger ones get EINVAL.</summary>
    public int MaxRequestSize { get; init; } = DefaultMaxRequestSize;

    /// <summary>
    /// Read payload bytes one client connection may have in flight in the guard. At the limit the guard stops reading
    /// the client's requests, so a flood of reads it never collects is backpressure, not memory.
    /// </summary>
    public int MaxBytesInFlight { get; init; } = DefaultMaxBytesInFlight;

    /// <summary>
    /// When set, awaited with each READ's length before it goes upstream: the host's bandwidth limit, enforced here
    /// because the guard is the one place every snapshot read passes. (A QEMU throttle node over the snapshot-access
    /// node, which the host used before, let some reads return data written after the instant: issue 15.)
    /// </summary>
    public Func<int, CancellationToken, Task>? ReadPacer { get; init; }

    /// <summary>Upper bound on the guard's own handshake with the upstream server.</summary>
    public TimeSpan UpstreamHandshakeTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
