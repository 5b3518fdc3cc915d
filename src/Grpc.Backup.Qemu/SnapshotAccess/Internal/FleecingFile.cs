namespace Grpc.Backup.Qemu.Internal;

/// <summary>
/// The fleecing image: a sparse raw file. Raw rather than qcow2 because it needs no tool to create, has
/// the disk's exact size by construction (a smaller target aborts QEMU on the first write past its end),
/// carries no metadata that TRIM cannot free (a trimmed raw file drops to 0 blocks, qcow2 keeps some),
/// and it lives for one backup only, so no qcow2 feature would be used.
/// </summary>
internal static class FleecingFile
{
    public static void Create(string path, ulong sizeBytes)
    {
        // CreateNew: never reuse or clobber a file someone else put there. 0600: it will hold guest data.
        using (var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            try
            {
                stream.SetLength(checked((long)sizeBytes));
                return;
            }
            catch (IOException)
            {
                // Fall through: the caller only records the file once this returns, so remove it here.
            }
        }

        File.Delete(path);
        throw new IOException($"Could not size the fleecing image {path} to {sizeBytes} bytes.");
    }

    public static void Delete(string path) => File.Delete(path);
}
