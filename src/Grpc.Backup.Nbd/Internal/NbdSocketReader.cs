using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// Buffered reader over the connection's socket. Headers are parsed out of a small buffer, so a
/// burst of small replies costs one receive call; large payloads bypass the buffer and are
/// received straight into the caller's memory (no intermediate copy).
/// </summary>
internal sealed class NbdSocketReader
{
    /// <summary>
    /// Payload remainders below this size go through the buffer: the same receive call then
    /// usually also picks up the next reply header.
    /// </summary>
    private const int DirectReceiveThreshold = 16 * 1024;

    private readonly Socket _socket;
    private readonly byte[] _buffer;
    private int _start;
    private int _end;

    public NbdSocketReader(Socket socket, int bufferSize = 64 * 1024)
    {
        _socket = socket;
        _buffer = new byte[bufferSize];
    }

    /// <summary>Largest amount <see cref="EnsureAsync"/> can make available at once.</summary>
    public int Capacity => _buffer.Length;

    public int Buffered => _end - _start;

    /// <summary>The next <paramref name="count"/> buffered bytes; call <see cref="EnsureAsync"/> first.</summary>
    public ReadOnlySpan<byte> Peek(int count)
    {
        Debug.Assert(count <= Buffered);
        return _buffer.AsSpan(_start, count);
    }

    public void Advance(int count)
    {
        Debug.Assert(count <= Buffered);
        _start += count;
        if (_start == _end)
        {
            _start = 0;
            _end = 0;
        }
    }

    /// <summary>Makes sure at least <paramref name="count"/> bytes are buffered.</summary>
    public ValueTask EnsureAsync(int count, CancellationToken cancellationToken)
    {
        return Buffered >= count ? ValueTask.CompletedTask : FillAsync(count, cancellationToken);
    }

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes into <paramref name="destination"/>.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReadExactAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        var fromBuffer = Math.Min(Buffered, destination.Length);
        if (fromBuffer > 0)
        {
            Peek(fromBuffer).CopyTo(destination.Span);
            Advance(fromBuffer);
            destination = destination[fromBuffer..];
        }

        while (destination.Length > 0)
        {
            if (destination.Length < DirectReceiveThreshold)
            {
                await FillAsync(destination.Length, cancellationToken);
                Peek(destination.Length).CopyTo(destination.Span);
                Advance(destination.Length);
                return;
            }

            var received = await _socket.ReceiveAsync(destination, SocketFlags.None, cancellationToken);
            if (received == 0)
            {
                throw ConnectionClosed();
            }

            destination = destination[received..];
        }
    }

    /// <summary>Reads and discards <paramref name="count"/> bytes.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SkipAsync(long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            if (Buffered == 0)
            {
                await FillAsync(1, cancellationToken);
            }

            var step = (int)Math.Min(count, Buffered);
            Advance(step);
            count -= step;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FillAsync(int count, CancellationToken cancellationToken)
    {
        if (count > _buffer.Length)
        {
            throw new InvalidOperationException($"Cannot buffer {count} bytes; the buffer holds {_buffer.Length}.");
        }

        if (_buffer.Length - _start < count)
        {
            // Move the unread tail to the front so the requested amount fits.
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, Buffered);
            _end -= _start;
            _start = 0;
        }

        while (Buffered < count)
        {
            var received = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken);
            if (received == 0)
            {
                throw ConnectionClosed();
            }

            _end += received;
        }
    }

    private static IOException ConnectionClosed() => new("The NBD server closed the connection.");
}
