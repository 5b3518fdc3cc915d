namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Raw checks on 512-byte tar header blocks, for what <see cref="System.Formats.Tar.TarReader"/> does not check but
/// GNU tar acts on. TarReader ignores the checksum; GNU tar, on a bad checksum, skips ahead to the next block that
/// looks like a header, which could be one hidden in a file's data. Both must see the same headers, so a bad checksum
/// refuses the archive.
/// </summary>
internal static class TarHeaderBlock
{
    public const int Size = 512;
    private const int ChecksumOffset = 148;
    private const int ChecksumLength = 8;
    private const int SizeOffset = 124;
    private const int SizeLength = 12;
    public const int TypeOffset = 156;
    private const int ModeOffset = 100;
    private const int ModeLength = 8;

    public static long Align(long position) => (position + Size - 1) / Size * Size;

    public static bool IsZero(ReadOnlySpan<byte> block) => !block.ContainsAnyExcept((byte)0);

    /// <summary>GNU tar's rule: the stored octal sum equals the unsigned or the signed byte sum, the field counted as spaces.</summary>
    public static bool HasValidChecksum(ReadOnlySpan<byte> block)
    {
        if (!TryParseNumber(block.Slice(ChecksumOffset, ChecksumLength), out long stored))
        {
            return false;
        }
        long unsignedSum = 0;
        long signedSum = 0;
        for (int i = 0; i < Size; i++)
        {
            bool inField = i is >= ChecksumOffset and < ChecksumOffset + ChecksumLength;
            unsignedSum += inField ? ' ' : block[i];
            signedSum += inField ? ' ' : (sbyte)block[i];
        }
        return stored == unsignedSum || stored == signedSum;
    }

    /// <summary>
    /// Clears the setuid and setgid bits of a header's mode field and rewrites its checksum; false if the mode field
    /// cannot be read (the caller refuses the member then).
    /// </summary>
    public static bool TryClearSetIdBits(Span<byte> block)
    {
        if (!TryParseNumber(block.Slice(ModeOffset, ModeLength), out long mode))
        {
            return false;
        }
        // Seven octal digits and a NUL, as GNU tar writes the field.
        string text = Convert.ToString(mode & ~0b110_000_000_000L, 8).PadLeft(ModeLength - 1, '0');
        if (text.Length != ModeLength - 1)
        {
            return false;
        }
        System.Text.Encoding.ASCII.GetBytes(text, block.Slice(ModeOffset, ModeLength - 1));
        block[ModeOffset + ModeLength - 1] = 0;
        long sum = 0;
        for (int i = 0; i < Size; i++)
        {
            sum += i is >= ChecksumOffset and < ChecksumOffset + ChecksumLength ? ' ' : block[i];
        }
        // Six octal digits, NUL, space: GNU tar's layout.
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0'), block.Slice(ChecksumOffset, 6));
        block[ChecksumOffset + 6] = 0;
        block[ChecksumOffset + 7] = (byte)' ';
        return true;
    }

    public static char TypeFlag(ReadOnlySpan<byte> block) => (char)block[TypeOffset];

    /// <summary>The size field, octal or base-256; false if neither.</summary>
    public static bool TryParseSize(ReadOnlySpan<byte> block, out long size) => TryParseNumber(block.Slice(SizeOffset, SizeLength), out size);

    private static bool TryParseNumber(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        if ((field[0] & 0x80) != 0)
        {
            // Base-256 (GNU/star extension for large values); 0xff marks a negative number, never valid here.
            if (field[0] == 0xff)
            {
                return false;
            }
            long result = field[0] & 0x7f;
            foreach (byte b in field[1..])
            {
                if (result > (long.MaxValue >> 8))
                {
                    return false;
                }
                result = (result << 8) | b;
            }
            value = result;
            return true;
        }
        int i = 0;
        while (i < field.Length && (field[i] == ' ' || field[i] == 0))
        {
            i++;
        }
        int digits = 0;
        while (i < field.Length && field[i] is >= (byte)'0' and <= (byte)'7')
        {
            if (value > (long.MaxValue >> 3))
            {
                return false;
            }
            value = (value << 3) | (long)(field[i] - '0');
            i++;
            digits++;
        }
        // Digits must be followed by a space or NUL terminator, or fill the field.
        return digits > 0 && (i == field.Length || field[i] == ' ' || field[i] == 0);
    }
}
