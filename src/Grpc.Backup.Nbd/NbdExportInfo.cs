namespace Grpc.Backup.Nbd;

/// <summary>What the server told us about the export during the handshake.</summary>
public sealed class NbdExportInfo
{
    internal NbdExportInfo(string name, long size, NbdTransmissionFlags flags, NbdBlockSizeConstraints blockSize, string? description)
    {
        Name = name;
        Size = size;
        Flags = flags;
        BlockSize = blockSize;
        Description = description;
    }

    /// <summary>The export name that was requested.</summary>
    public string Name { get; }

    /// <summary>Export size in bytes.</summary>
    public long Size { get; }

    /// <summary>Raw transmission flags.</summary>
    public NbdTransmissionFlags Flags { get; }

    /// <summary>Alignment and size limits the server asked for (or the protocol defaults).</summary>
    public NbdBlockSizeConstraints BlockSize { get; }

    /// <summary>Optional human readable description (NBD_INFO_DESCRIPTION).</summary>
    public string? Description { get; }

    public bool IsReadOnly => Has(NbdTransmissionFlags.ReadOnly);

    public bool CanFlush => Has(NbdTransmissionFlags.SendFlush);

    public bool CanFua => Has(NbdTransmissionFlags.SendFua);

    public bool CanTrim => Has(NbdTransmissionFlags.SendTrim);

    public bool CanWriteZeroes => Has(NbdTransmissionFlags.SendWriteZeroes);

    public bool CanFastZero => Has(NbdTransmissionFlags.SendFastZero);

    /// <summary>
    /// The server keeps all connections to this export coherent, so requests may be spread over
    /// several connections and a flush on one covers writes completed on all.
    /// </summary>
    public bool CanMultiConn => Has(NbdTransmissionFlags.CanMultiConn);

    public bool IsRotational => Has(NbdTransmissionFlags.Rotational);

    private bool Has(NbdTransmissionFlags flag) => (Flags & flag) != 0;
}
