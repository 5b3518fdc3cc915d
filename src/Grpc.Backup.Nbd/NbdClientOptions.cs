namespace Grpc.Backup.Nbd;

/// <summary>Settings for <see cref="NbdClient"/> connections. Read once, when connecting.</summary>
public sealed class NbdClientOptions
{
    /// <summary>Default for <see cref="MaxRequestSize"/>.</summary>
    public const int DefaultMaxRequestSize = 512 * 1024;

    /// <summary>Default for <see cref="MaxInFlightRequests"/>.</summary>
    public const int DefaultMaxInFlightRequests = 64;

    /// <summary>
    /// Metadata contexts to negotiate, e.g. <see cref="NbdMetaContexts.BaseAllocation"/> or
    /// <c>qemu:dirty-bitmap:NAME</c>. Needed for <see cref="NbdClient.GetBlockStatusAsync"/>.
    /// </summary>
    public IList<string> MetaContexts { get; } = new List<string>();

    /// <summary>
    /// When true (default) connecting fails if the server does not provide every requested
    /// metadata context; when false missing contexts are simply absent from
    /// <see cref="NbdClient.MetaContexts"/>.
    /// </summary>
    public bool RequireMetaContexts { get; set; } = true;

    /// <summary>
    /// Negotiate structured replies (default). They allow sparse reads, precise error reports and
    /// block status; turning them off is only useful for testing simple-reply servers.
    /// </summary>
    public bool RequestStructuredReplies { get; set; } = true;

    /// <summary>
    /// Largest READ/WRITE payload sent in one request; larger calls are split into several
    /// pipelined requests (spread over all connections by <see cref="NbdMultiConnClient"/>).
    /// Always capped by the server's maximum block size (32 MiB when the server does not say).
    /// The default, 512 KiB, is large enough that per-request overhead is negligible, yet well
    /// below the 1 MiB-and-up requests that QEMU's NBD server was measured to serve much more
    /// slowly over Unix sockets.
    /// </summary>
    public int MaxRequestSize { get; set; } = DefaultMaxRequestSize;

    /// <summary>Requests one connection keeps in flight at most; further calls wait for a free slot.</summary>
    public int MaxInFlightRequests { get; set; } = DefaultMaxInFlightRequests;

    /// <summary>Upper bound on the handshake; a silent server otherwise stalls connecting forever.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A validated snapshot, so later changes by the caller do not affect live connections.</summary>
    internal NbdClientOptions Snapshot()
    {
        if (MaxRequestSize < 512)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRequestSize), MaxRequestSize, "MaxRequestSize must be at least 512 bytes.");
        }

        if (MaxInFlightRequests is < 1 or > 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxInFlightRequests), MaxInFlightRequests, "MaxInFlightRequests must be between 1 and 4096.");
        }

        if (HandshakeTimeout <= TimeSpan.Zero && HandshakeTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(HandshakeTimeout), HandshakeTimeout, "HandshakeTimeout must be positive or infinite.");
        }

        if (MetaContexts.Count > Internal.NbdProtocol.MaxMetaContexts)
        {
            throw new ArgumentException($"At most {Internal.NbdProtocol.MaxMetaContexts} meta contexts can be requested.", nameof(MetaContexts));
        }

        var copy = new NbdClientOptions
        {
            RequireMetaContexts = RequireMetaContexts,
            RequestStructuredReplies = RequestStructuredReplies,
            MaxRequestSize = MaxRequestSize,
            MaxInFlightRequests = MaxInFlightRequests,
            HandshakeTimeout = HandshakeTimeout,
        };
        foreach (var context in MetaContexts)
        {
            ArgumentException.ThrowIfNullOrEmpty(context, nameof(MetaContexts));
            if (!copy.MetaContexts.Contains(context))
            {
                copy.MetaContexts.Add(context);
            }
        }

        return copy;
    }
}
