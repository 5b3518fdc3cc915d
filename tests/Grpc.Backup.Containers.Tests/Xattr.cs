using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text;

namespace Grpc.Backup.Containers.Tests;

/// <summary>user.* extended attributes through libc (.NET has no API; the attr package may be absent).</summary>
internal static unsafe partial class Xattr
{
    public static void Set(string path, string name, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        fixed (byte* pointer = bytes)
        {
            if (lsetxattr(path, name, pointer, (nuint)bytes.Length, 0) != 0)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError(), $"lsetxattr {path} {name}");
            }
        }
    }

    public static string? Get(string path, string name)
    {
        byte* buffer = stackalloc byte[4096];
        nint length = lgetxattr(path, name, buffer, 4096);
        return length < 0 ? null : Encoding.UTF8.GetString(buffer, (int)length);
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lsetxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint lgetxattr(string path, string name, byte* value, nuint size);
}
