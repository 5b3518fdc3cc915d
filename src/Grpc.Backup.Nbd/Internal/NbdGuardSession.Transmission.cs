using System.Buffers;
using System.Buffers.Binary;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// The transmission phase: READ, BLOCK_STATUS and TRIM are checked and forwarded, DISC ends the session, everything
/// else is refused with the error the protocol names. Requests are pipelined up to the byte budget; at the budget the
/// loop stops reading the client's socket, so a flood waits in the client's kernel buffer, not in the host's memory.
/// </summary>
internal sealed partial class NbdGuardSession
{
    private const int EPERM = 1;
    private const int EIO = 5;
    private const int EINVAL = 22;

    private async Task TransmitAsync()
    {
        var token = _stop.Token;
        while (true)
        {
            await _in.EnsureAsync(NbdProtocol.RequestSize, token);
            var header = _in.Peek(NbdProtocol.RequestSize);
            var magic = BinaryPrimitives.ReadUInt32BigEndian(header);
            var flags = BinaryPrimitives.ReadUInt16BigEndian(header[4..]);
            var command = (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(header[6..]);
            var cookie = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
            var offset = BinaryPrimitives.ReadUInt64BigEndian(header[16..]);
            var length = BinaryPrimitives.ReadUInt32BigEndian(header[24..]);
            _in.Advance(NbdProtocol.RequestSize);
            if (magic != NbdProtocol.RequestMagic)
            {
                // Out of sync (or extended headers it never negotiated): nothing after this can be parsed.
                return;
            }

            switch (command)
            {
                case NbdCommand.Disconnect:
                    // The protocol: finish what is in flight, then close.
                    await DrainAsync();
                    return;

                case NbdCommand.Read:
                    if (!IsValidRead(flags, offset, length))
                    {
                        await SendErrorAsync(cookie, EINVAL);
                        break;
                    }

                    var units = (int)Math.Min(_budgetUnits, Math.Max(1, (length + BudgetUnit - 1) / BudgetUnit));
                    await AcquireAsync(units);
                    _ = ReadAsync(cookie, (long)offset, (int)length, units);
                    break;

                case NbdCommand.BlockStatus:
                    if (!IsValidBlockStatus(flags, offset, length))
                    {
                        await SendErrorAsync(cookie, EINVAL);
                        break;
                    }

                    await AcquireAsync(1);
                    _ = BlockStatusAsync(cookie, (long)offset, length, (flags & NbdProtocol.CommandFlagReqOne) != 0);
                    break;

                case NbdCommand.Trim:
                    if (!_export.CanTrim)
                    {
                        await SendErrorAsync(cookie, EPERM);
                        break;
                    }

                    if ((flags & ~(ushort)NbdCommandFlags.Fua) != 0 || length == 0 || !InRange(offset, length))
                    {
                        await SendErrorAsync(cookie, EINVAL);
                        break;
                    }

                    // Inward to whole clusters: QEMU's copy-before-write asserts on (and aborts for) a partial one, and
                    // discarding less than asked is always allowed. Nothing left: done, QEMU never sees it.
                    var start = RoundUp((long)offset, _export.Granularity);
                    var end = RoundDown((long)offset + length, _export.Granularity);
                    if (end <= start)
                    {
                        await SendDoneAsync(cookie);
                        break;
                    }

                    await AcquireAsync(1);
                    _ = TrimAsync(cookie, start, end - start);
                    break;

                case NbdCommand.Write:
                    // Not allowed, but its payload is on the wire: skip it (in small steps, never buffered) to stay in sync.
                    await _in.SkipAsync(length, token);
                    await SendErrorAsync(cookie, EPERM);
                    break;

                case NbdCommand.WriteZeroes:
                    await SendErrorAsync(cookie, EPERM);
                    break;

                default:
                    // FLUSH, CACHE and RESIZE were not advertised; unknown commands carry no payload the guard knows of.
                    await SendErrorAsync(cookie, EINVAL);
                    break;
            }
        }
    }

    private bool IsValidRead(ushort flags, ulong offset, uint length)
    {
        var allowed = _structured ? NbdProtocol.CommandFlagDf : (ushort)0;
        if ((flags & ~allowed) != 0 || length == 0 || length > _export.Maximum || !InRange(offset, length))
        {
            return false;
        }

        // The guard's upstream client refuses requests its server's alignment forbids; answer those here.
        var alignment = _export.UpstreamAlignment;
        return alignment <= 1 || (offset % alignment == 0 && (length % alignment == 0 || (long)offset + length == _export.Size));
    }

    private bool IsValidBlockStatus(ushort flags, ulong offset, uint length) =>
        _structured && _selected.Length > 0 && (flags & ~NbdProtocol.CommandFlagReqOne) == 0 && length != 0 && InRange(offset, length)
        && offset % _export.Minimum == 0;

    private bool InRange(ulong offset, uint length) => offset <= (ulong)_export.Size && length <= (ulong)_export.Size - offset;

    private static long RoundUp(long value, uint unit) => (value + unit - 1) / unit * unit;

    private static long RoundDown(long value, uint unit) => value / unit * unit;

    private async Task AcquireAsync(int units)
    {
        // Only this loop acquires, so taking units one at a time cannot deadlock against another acquirer. Units taken
        // before a stop are given back: closing waits for the whole budget.
        var taken = 0;
        try
        {
            for (; taken < units; taken++)
            {
                await _budget.WaitAsync(_stop.Token);
            }
        }
        catch (OperationCanceledException)
        {
            if (taken > 0)
            {
                _budget.Release(taken);
            }

            throw;
        }
    }

    private async Task DrainAsync()
    {
        await AcquireAsync(_budgetUnits);
        _budget.Release(_budgetUnits);
    }

    private async Task ReadAsync(ulong cookie, long offset, int length, int units)
    {
        var buffer = _readBuffers.Rent(length);
        try
        {
            int error;
            try
            {
                if (_readPacer is not null)
                {
                    await _readPacer(length, _stop.Token);
                }

                await _upstream.Data.ReadAsync(offset, buffer.AsMemory(0, length), _stop.Token);
                error = 0;
            }
            catch (NbdException ex)
            {
                error = ToClientErrno(ex.Errno);
            }

            if (error != 0)
            {
                await SendErrorAsync(cookie, error);
            }
            else
            {
                await SendReadReplyAsync(buffer, cookie, offset, length);
            }
        }
        catch (Exception)
        {
            // The upstream connection or the client is gone (or a bug): the session ends rather than leave the client
            // waiting for a reply that will never come.
            Stop();
        }
        finally
        {
            _readBuffers.Return(buffer);
            _budget.Release(units);
        }
    }

    private async Task TrimAsync(ulong cookie, long offset, long length)
    {
        try
        {
            try
            {
                await _upstream.Data.TrimAsync(offset, length, NbdCommandFlags.None, _stop.Token);
            }
            catch (NbdException ex)
            {
                await SendErrorAsync(cookie, ToClientErrno(ex.Errno));
                return;
            }

            await SendDoneAsync(cookie);
        }
        catch (Exception)
        {
            Stop();
        }
        finally
        {
            _budget.Release();
        }
    }

    private async Task BlockStatusAsync(ulong cookie, long offset, uint length, bool requestOne)
    {
        try
        {
            var selected = _selected;
            var chunks = new List<(int Id, List<NbdExtent> Extents)>(selected.Length);
            try
            {
                foreach (var id in selected)
                {
                    chunks.Add((id, await QueryBlockStatusAsync(id - 1, offset, length, requestOne)));
                }
            }
            catch (NbdException ex)
            {
                await SendErrorAsync(cookie, ToClientErrno(ex.Errno));
                return;
            }

            await SendBlockStatusAsync(cookie, chunks);
        }
        catch (Exception)
        {
            Stop();
        }
        finally
        {
            _budget.Release();
        }
    }

    /// <summary>
    /// One context's extents from upstream, in whole units of the advertised minimum block size (the protocol requires
    /// descriptor lengths to be multiples of it), clipped to the request.
    /// </summary>
    private async Task<List<NbdExtent>> QueryBlockStatusAsync(int index, long offset, uint length, bool requestOne)
    {
        var context = _export.Contexts[index];
        var upstream = _upstream.ForContext(index);
        var unit = _export.Minimum;
        var requestEnd = offset + length;
        var upstreamEnd = Math.Min(_export.Size, RoundUp(requestEnd, unit));
        var extents = new List<NbdExtent>(await upstream.GetBlockStatusAsync(context, offset, upstreamEnd - offset, _stop.Token));
        if (extents.Count == 0)
        {
            throw new NbdProtocolException($"The upstream server answered block status for '{context}' without an extent.");
        }

        // A partial answer that ends inside a unit: ask on to the unit's end, so no unit is judged on half of it.
        var end = extents[^1].End;
        while (end % unit != 0 && end < _export.Size)
        {
            var more = await upstream.GetBlockStatusAsync(context, end, Math.Min(RoundUp(end, unit), _export.Size) - end, _stop.Token);
            if (more.Count == 0)
            {
                throw new NbdProtocolException($"The upstream server answered block status for '{context}' without an extent.");
            }

            extents.AddRange(more);
            end = extents[^1].End;
        }

        var merged = ExtentCoalescer.Coalesce(extents, unit, context == NbdMetaContexts.BaseAllocation);
        ExtentCoalescer.Clip(merged, requestEnd);
        if (requestOne && merged.Count > 1)
        {
            merged.RemoveRange(1, merged.Count - 1);
        }

        return merged;
    }

    /// <summary>Upstream errno values are passed on when the protocol knows them; anything else becomes EIO.</summary>
    private static int ToClientErrno(int errno) => errno is 1 or 5 or 12 or 22 or 28 or 75 or 95 or 108 ? errno : EIO;
}
