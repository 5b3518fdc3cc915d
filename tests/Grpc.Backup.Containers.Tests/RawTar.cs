using System.Globalization;
using System.Text;

namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// Builds tar archives block by block, for what TarWriter will not write: any type flag, GNU magic, a checksum that is
/// wrong on purpose, pax records that lie about sizes, data after the end marker, truncation.
/// </summary>
internal sealed class RawTar
{
    private readonly List<byte> _bytes = [];

    public RawTar Directory(string name, int uid = 0) => Header(name, '5', 0, mode: "0000755", uid: uid);

    public RawTar File(string name, string content, string mode = "0000644", int uid = 0)
    {
        byte[] data = Encoding.UTF8.GetBytes(content);
        return Header(name, '0', data.Length, mode: mode, uid: uid).Data(data);
    }

    public RawTar Symlink(string name, string target) => Header(name, '2', 0, linkName: target);

    public RawTar HardLink(string name, string target) => Header(name, '1', 0, linkName: target);

    /// <summary>A pax extended header ('x', or 'g' for global) with the given records.</summary>
    public RawTar Pax(IEnumerable<(string Key, string Value)> records, char type = 'x')
    {
        var text = new StringBuilder();
        foreach ((string key, string value) in records)
        {
            // "LEN key=value\n", where LEN counts itself.
            int length = Encoding.UTF8.GetByteCount($" {key}={value}\n");
            int total = length + length.ToString(CultureInfo.InvariantCulture).Length;
            if (total.ToString(CultureInfo.InvariantCulture).Length != length.ToString(CultureInfo.InvariantCulture).Length)
            {
                total++;
            }
            text.Append(CultureInfo.InvariantCulture, $"{total} {key}={value}\n");
        }
        byte[] data = Encoding.UTF8.GetBytes(text.ToString());
        return Header("./PaxHeaders/x", type, data.Length).Data(data);
    }

    public RawTar Header(string name, char type, long size, string mode = "0000644", int uid = 0, string linkName = "", bool gnu = false,
        bool corruptChecksum = false)
    {
        byte[] header = new byte[512];
        Put(header, 0, name, 100);
        Put(header, 100, mode + "\0", 8);
        Put(header, 108, Convert.ToString(uid, 8).PadLeft(7, '0') + "\0", 8);
        Put(header, 116, Convert.ToString(uid, 8).PadLeft(7, '0') + "\0", 8);
        Put(header, 124, Convert.ToString(size, 8).PadLeft(11, '0') + "\0", 12);
        Put(header, 136, "14000000000\0", 12);
        header[156] = (byte)type;
        Put(header, 157, linkName, 100);
        Put(header, 257, gnu ? "ustar  \0" : "ustar\000", 8);
        Put(header, 265, "root", 32);
        Put(header, 297, "root", 32);
        header.AsSpan(148, 8).Fill((byte)' ');
        int sum = header.Sum(b => b) + (corruptChecksum ? 1 : 0);
        Put(header, 148, Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ", 8);
        _bytes.AddRange(header);
        return this;
    }

    /// <summary>Data, padded to the next block.</summary>
    public RawTar Data(byte[] data)
    {
        _bytes.AddRange(data);
        _bytes.AddRange(new byte[(512 - (data.Length % 512)) % 512]);
        return this;
    }

    /// <summary>The end-of-archive marker: two zero blocks.</summary>
    public RawTar End() => Zeros(1024);

    public RawTar Zeros(int count)
    {
        _bytes.AddRange(new byte[count]);
        return this;
    }

    public byte[] ToArray() => [.. _bytes];

    private static void Put(byte[] header, int offset, string text, int length)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        Assert.True(bytes.Length <= length, $"'{text}' does not fit in {length} bytes");
        bytes.CopyTo(header, offset);
    }
}
