using System.Text;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// The ustar pieces of the tar stream fed to <c>borg import-tar</c>: a header per member (regular file, mode 0600,
/// owner 0:0), padding to 512 bytes, and the end-of-archive marker. Sizes beyond ustar's 8 GiB use the GNU base-256
/// encoding, which Python's tarfile (borg's reader) accepts. Written by hand because System.Formats.Tar needs a
/// seekable data stream, and disk images are streamed.
/// </summary>
internal static class TarHeader
{
    public const int BlockSize = 512;

    public static byte[] For(string name, long size, DateTimeOffset modified)
    {
        byte[] name8 = Encoding.ASCII.GetBytes(name);
        if (name8.Length > 100)
        {
            throw new ArgumentException($"tar member name '{name}' is longer than 100 bytes", nameof(name));
        }
        byte[] header = new byte[BlockSize];
        name8.CopyTo(header, 0);
        Octal(header, 100, 8, 0b110_000_000); // mode 0600
        Octal(header, 108, 8, 0); // uid
        Octal(header, 116, 8, 0); // gid
        if (size < 1L << 33)
        {
            Octal(header, 124, 12, size);
        }
        else
        {
            header[124] = 0x80;
            for (int i = 0; i < 8; i++)
            {
                header[135 - i] = (byte)(size >> (8 * i));
            }
        }
        Octal(header, 136, 12, Math.Max(0, modified.ToUnixTimeSeconds()));
        header[156] = (byte)'0';
        Encoding.ASCII.GetBytes("ustar\0" + "00").CopyTo(header, 257);
        Encoding.ASCII.GetBytes("root").CopyTo(header, 265);
        Encoding.ASCII.GetBytes("root").CopyTo(header, 297);
        // The checksum is computed with its own field as spaces.
        for (int i = 148; i < 156; i++)
        {
            header[i] = (byte)' ';
        }
        int sum = header.Sum(b => b);
        Octal(header, 148, 7, sum);
        header[155] = (byte)' ';
        return header;
    }

    /// <summary>Zero bytes that complete a member of <paramref name="size"/> bytes to a whole block.</summary>
    public static int PaddingFor(long size) => (int)((BlockSize - size % BlockSize) % BlockSize);

    /// <summary>Two zero blocks end the archive.</summary>
    public static byte[] EndOfArchive() => new byte[2 * BlockSize];

    private static void Octal(byte[] header, int offset, int length, long value)
    {
        string text = Convert.ToString(value, 8).PadLeft(length - 1, '0');
        Encoding.ASCII.GetBytes(text).CopyTo(header, offset);
        header[offset + length - 1] = 0;
    }
}
