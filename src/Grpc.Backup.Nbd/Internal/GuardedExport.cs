using System.Text;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// What the guard serves: the one export, described from the upstream handshake and narrowed to what clients may do
/// (no write, flush, cache or multi-conn flags; block sizes the guard's own).
/// </summary>
internal sealed class GuardedExport
{
    public GuardedExport(NbdExportInfo upstream, IReadOnlyList<string> upstreamContexts, NbdGuardOptions options)
    {
        Name = upstream.Name;
        NameBytes = Encoding.UTF8.GetBytes(upstream.Name);
        Size = upstream.Size;
        CanTrim = upstream.CanTrim && !upstream.IsReadOnly;
        var flags = NbdTransmissionFlags.HasFlags;
        if (upstream.IsReadOnly)
        {
            flags |= NbdTransmissionFlags.ReadOnly;
        }

        if (CanTrim)
        {
            flags |= NbdTransmissionFlags.SendTrim;
        }

        Flags = flags;
        Granularity = (uint)options.DiscardGranularity;
        Minimum = (uint)(options.MinimumBlockSize ?? Math.Min(options.DiscardGranularity, 64 * 1024));
        Preferred = Math.Max(Granularity, Minimum);
        Maximum = (uint)options.MaxRequestSize;
        UpstreamAlignment = upstream.BlockSize.Minimum;

        // The client sees the contexts under ids of the guard's choosing (index + 1), never QEMU's.
        Contexts = upstreamContexts;
    }

    public string Name { get; }

    public byte[] NameBytes { get; }

    public long Size { get; }

    /// <summary>Transmission flags common to every client; <see cref="FlagsFor"/> adds what depends on the handshake.</summary>
    public NbdTransmissionFlags Flags { get; }

    /// <summary>
    /// The transmission flags for a client: SEND_DF only with structured replies (the protocol: the server MUST leave it
    /// clear otherwise; DF is honoured on structured reads, which the guard sends in one chunk anyway).
    /// </summary>
    public NbdTransmissionFlags FlagsFor(bool structured) => structured ? Flags | NbdTransmissionFlags.SendDf : Flags;

    public bool CanTrim { get; }

    /// <summary>TRIMs are rounded inward to this.</summary>
    public uint Granularity { get; }

    public uint Minimum { get; }

    public uint Preferred { get; }

    public uint Maximum { get; }

    /// <summary>The upstream server's minimum block size, which the guard's upstream client enforces.</summary>
    public uint UpstreamAlignment { get; }

    /// <summary>Context names; the client-side id of <c>Contexts[i]</c> is <c>i + 1</c>.</summary>
    public IReadOnlyList<string> Contexts { get; }

    public bool IsContext(ReadOnlySpan<byte> name, out int index)
    {
        for (index = 0; index < Contexts.Count; index++)
        {
            if (Encoding.UTF8.GetByteCount(Contexts[index]) == name.Length && Encoding.UTF8.GetString(name) == Contexts[index])
            {
                return true;
            }
        }

        return false;
    }

    public bool IsExportName(ReadOnlySpan<byte> name) => name.SequenceEqual(NameBytes);
}
