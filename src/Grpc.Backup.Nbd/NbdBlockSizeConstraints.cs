namespace Grpc.Backup.Nbd;

/// <summary>
/// Block size constraints from NBD_INFO_BLOCK_SIZE. Requests should be aligned to
/// <see cref="Minimum"/>, ideally to <see cref="Preferred"/>, and a READ/WRITE payload must not exceed
/// <see cref="Maximum"/>.
/// </summary>
public readonly record struct NbdBlockSizeConstraints(uint Minimum, uint Preferred, uint Maximum)
{
    /// <summary>
    /// What the protocol tells clients to assume when the server sends no constraints:
    /// any alignment, 4 KiB preferred, 32 MiB payloads.
    /// </summary>
    public static NbdBlockSizeConstraints Default { get; } = new(1, 4096, 32 * 1024 * 1024);
}
