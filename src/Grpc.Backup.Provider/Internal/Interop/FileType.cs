using System.Text;
using Tmds.Linux;

namespace Grpc.Backup.Provider.Internal.Interop;

/// <summary>File-type checks .NET does not offer: it has no S_ISSOCK.</summary>
internal static class FileType
{
    /// <summary>True if <paramref name="path"/> itself (not a symlink target) is a Unix socket.</summary>
    public static unsafe bool IsSocket(string path)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(path + "\0");
        stat buffer;
        fixed (byte* p = bytes)
        {
            if (LibC.lstat(p, &buffer) != 0)
            {
                return false;
            }
        }
        return LibC.S_ISSOCK(buffer.st_mode);
    }
}
