using System.Runtime.InteropServices;

namespace Grpc.Backup.Service.Internal.Interop;

/// <summary>The owner uid of a file: .NET exposes the mode but not the owner.</summary>
internal static partial class FileOwner
{
    public static uint Of(string path)
    {
        // statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_UID): stx_uid is at offset 20 of struct statx.
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(-100, path, 0x100, 0x8, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            throw new IOException($"statx {path}: errno {Marshal.GetLastPInvokeError()}");
        }
        return MemoryMarshal.Read<uint>(buffer[20..]);
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, ref byte buffer);
}
