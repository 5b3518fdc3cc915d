using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Grpc.Backup.Transport;

/// <summary>
/// A 16-byte token: the id of a transfer, or of a sideband channel (HELLO). Tokens come from a
/// CSPRNG and are never all zero, so <c>default(FdToken)</c> is never a real token.
/// </summary>
public readonly struct FdToken : IEquatable<FdToken>
{
    /// <summary>The size of a token in bytes.</summary>
    public const int Size = 16;

    // Two halves in wire order (little-endian reads), so that equality and hashing are cheap.
    private readonly ulong _first;
    private readonly ulong _second;

    private FdToken(ReadOnlySpan<byte> bytes)
    {
        _first = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        _second = BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]);
    }

    /// <summary>A fresh random token from <see cref="RandomNumberGenerator"/>, never all zero.</summary>
    public static FdToken NewRandom()
    {
        Span<byte> bytes = stackalloc byte[Size];
        do
        {
            RandomNumberGenerator.Fill(bytes);
        }
        while (!bytes.ContainsAnyExcept((byte)0));

        return new FdToken(bytes);
    }

    /// <summary>The token with these 16 bytes.</summary>
    /// <exception cref="ArgumentException">Not exactly 16 bytes, or all zero.</exception>
    public static FdToken FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException($"A token is exactly {Size} bytes, not {bytes.Length}.", nameof(bytes));
        }

        if (!bytes.ContainsAnyExcept((byte)0))
        {
            throw new ArgumentException("A token is never all zero.", nameof(bytes));
        }

        return new FdToken(bytes);
    }

    /// <summary>The 16 bytes of the token, in wire order.</summary>
    public byte[] ToByteArray()
    {
        var bytes = new byte[Size];
        CopyTo(bytes);
        return bytes;
    }

    /// <summary>Writes the 16 bytes of the token to the start of <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 16 bytes.</exception>
    public void CopyTo(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"The destination needs {Size} bytes.", nameof(destination));
        }

        BinaryPrimitives.WriteUInt64LittleEndian(destination, _first);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], _second);
    }

    /// <summary>The token as 32 lowercase hex digits, in wire order.</summary>
    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    /// <inheritdoc/>
    public bool Equals(FdToken other) => _first == other._first && _second == other._second;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is FdToken other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_first, _second);

    /// <summary>Equality of the 16 bytes.</summary>
    public static bool operator ==(FdToken left, FdToken right) => left.Equals(right);

    /// <summary>Inequality of the 16 bytes.</summary>
    public static bool operator !=(FdToken left, FdToken right) => !left.Equals(right);
}
