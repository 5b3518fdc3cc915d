using Grpc.Backup.Protocol;
using System.Formats.Tar;

namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// One pass over a (decompressed) tar stream: every member is read with TarReader, checked (per-member rules and the
/// tree), and only then released through the <see cref="ValidationGate"/> to the sink (tar's stdin during a restore).
/// Members left out by policy are cut from the forwarded bytes. The end must be a proper end-of-archive marker with
/// nothing but zeros after it; the sink gets an explicit marker.
/// </summary>
/// <remarks>
/// With a <see cref="MemberSelection"/> (a file restore) only the selected members reach the sink, every member up to
/// the end of the selection is checked as in a whole restore (a symlink defined earlier still refuses a member
/// written through it), and reading stops once the selection is complete; the sink then gets the end marker at once.
/// <paramref name="onMember"/> sees each selected member as accepted (a listing).
/// </remarks>
internal sealed class ArchiveScan(TarValidationOptions options, Stream? sink, BandwidthThrottle? throttle,
    MemberSelection? selection = null, Action<ScannedMember, TarEntry>? onMember = null)
{
    private const int ChunkSize = 64 * 1024;

    // Global pax keywords GNU tar may apply to every following member without changing where or what it extracts.
    private static readonly HashSet<string> HarmlessGlobalKeys = new(StringComparer.Ordinal) { "comment", "mtime", "atime", "ctime", "charset", "hdrcharset" };

    private readonly ArchiveTree _tree = new();
    private readonly List<string> _skipped = [];
    private readonly List<string> _setId = [];
    private readonly List<string> _warnings = [];
    private readonly byte[] _buffer = new byte[ChunkSize];
    private long _members;
    private long _total;
    private string _last = "(none: at the start)";
    private ArchiveCompression _compression;
    // The previous member's data and padding were left out of the sink.
    private bool _dropTail;

    public async Task<TarValidationReport> RunAsync(Stream tarStream, ArchiveCompression compression, CancellationToken cancellationToken)
    {
        _compression = compression;
        var gate = new ValidationGate(tarStream, options.MaxMetadataSize);
        using var reader = new TarReader(gate, leaveOpen: true);
        long next = 0;
        while (true)
        {
            gate.BeginHeaders(next);
            TarEntry? entry;
            try
            {
                entry = await reader.GetNextEntryAsync(copyData: false, cancellationToken);
            }
            catch (Exception e) when (IsFormatError(e))
            {
                throw Corrupt(gate, e);
            }
            if (entry is null)
            {
                break;
            }
            next = entry is PaxGlobalExtendedAttributesTarEntry global
                ? await AcceptGlobalAsync(global, gate, cancellationToken)
                : await AcceptMemberAsync(entry, gate, cancellationToken);
            if (next < 0)
            {
                await StopAsync(gate, cancellationToken);
                return new TarValidationReport(compression, _members, _total, _skipped, _setId, _warnings, ReadToEnd: false);
            }
        }
        await FinishAsync(gate, next, cancellationToken);
        if (selection?.Unseen.FirstOrDefault() is { } missing)
        {
            throw new ArchivePathNotFoundException(missing);
        }
        return new TarValidationReport(compression, _members, _total, _skipped, _setId, _warnings);
    }

    /// <summary>Sends (or, after a member left out, drops) the bytes before <paramref name="upTo"/>: the previous member's tail.</summary>
    private async Task ReleaseTailAsync(ValidationGate gate, long upTo, CancellationToken cancellationToken)
    {
        if (_dropTail)
        {
            gate.Discard(upTo);
        }
        else
        {
            await gate.ReleaseAsync(upTo, sink, throttle, cancellationToken);
        }
        _dropTail = false;
    }

    /// <summary>The selection is complete: the current member's headers are dropped and the sink gets the end marker.</summary>
    private async Task StopAsync(ValidationGate gate, CancellationToken cancellationToken)
    {
        await ReleaseTailAsync(gate, gate.HeaderStart, cancellationToken);
        gate.Discard(gate.Position);
        if (sink is not null)
        {
            await sink.WriteAsync(new byte[2 * TarHeaderBlock.Size], cancellationToken);
        }
    }

    private async Task<long> AcceptGlobalAsync(PaxGlobalExtendedAttributesTarEntry global, ValidationGate gate, CancellationToken cancellationToken)
    {
        foreach (string key in global.GlobalExtendedAttributes.Keys)
        {
            if (!HarmlessGlobalKeys.Contains(key))
            {
                throw new TarArchiveRejectedException(
                    $"a pax global header after member '{_last}' sets '{key}', which GNU tar would apply to every following member");
            }
        }
        long next = TarHeaderBlock.Align(gate.MainHeaderEnd + gate.MainSize);
        if (gate.MainType != 'g' || gate.Position > next)
        {
            throw new TarArchiveRejectedException($"a pax global header after member '{_last}' has a layout TarReader and the raw walk disagree on");
        }
        await ReleaseTailAsync(gate, gate.HeaderStart, cancellationToken);
        await gate.ReleaseAsync(gate.Position, sink, throttle, cancellationToken);
        return next;
    }

    /// <summary>The most names each report list keeps (skipped, set-id, warnings); the counts stay exact.</summary>
    private const int MaxListed = 1000;

    private async Task<long> AcceptMemberAsync(TarEntry entry, ValidationGate gate, CancellationToken cancellationToken)
    {
        if (_members >= options.MaxMembers)
        {
            throw new TarArchiveRejectedException($"the archive has more than {options.MaxMembers} members (after '{_last}')");
        }
        ScannedMember member = MemberRules.Check(entry, gate, options);
        if (selection is not null && selection.IsCompleteBefore(member.Path))
        {
            return -1;
        }
        if (member.Kind == MemberKind.HardLink)
        {
            _tree.CheckHardLinkTarget(member.HardLinkTarget!, member.Name);
        }
        _tree.Add(member.Path, member.Kind, member.Name);
        _total += member.Size;
        if (_total > options.MaxTotalSize)
        {
            throw new TarArchiveRejectedException(
                $"member '{member.Name}' brings the archive to {_total} bytes, more than the limit of {options.MaxTotalSize}", member.Name);
        }
        _members++;
        _last = member.Name;
        bool selected = selection is null || selection.Includes(member.Path);
        if (selected && member.HasSetIdBits && _setId.Count < MaxListed)
        {
            _setId.Add(member.Name);
            if (options.SetIdBits == SetIdBitsPolicy.Strip)
            {
                _warnings.Add($"cleared the setuid/setgid bits of '{member.Name}'");
            }
        }

        bool forward = selected && !member.Skip;
        if (selected && member.Skip && _skipped.Count < MaxListed)
        {
            _skipped.Add(member.Name);
            _warnings.Add($"skipped device node '{member.Name}': an unprivileged restore cannot create device nodes");
        }
        if (forward && member.Kind == MemberKind.HardLink && selection is not null && !selection.WasForwarded(member.HardLinkTarget!))
        {
            // tar could not link to a file it never got.
            forward = false;
            _warnings.Add($"left out hard link '{member.Name}': its target '{member.HardLinkTarget}' is not in the selection");
        }
        // The previous member's padding (or, if it was left out, its data and padding), then this member's headers:
        // a member left out never reaches tar.
        await ReleaseTailAsync(gate, gate.HeaderStart, cancellationToken);
        if (forward)
        {
            await gate.ReleaseAsync(gate.Position, sink, throttle, cancellationToken);
            selection?.Forwarded(member.Path);
        }
        else
        {
            gate.Discard(gate.Position);
        }
        if (selected)
        {
            selection?.Seen(member.Path);
            onMember?.Invoke(member, entry);
        }
        await CopyDataAsync(entry, gate, member.Name, forward, cancellationToken);
        _dropTail = !forward;
        return TarHeaderBlock.Align(gate.MainHeaderEnd + entry.Length);
    }

    private async Task CopyDataAsync(TarEntry entry, ValidationGate gate, string name, bool forward, CancellationToken cancellationToken)
    {
        if (entry.DataStream is null)
        {
            return;
        }
        long copied = 0;
        try
        {
            int read;
            while ((read = await entry.DataStream.ReadAsync(_buffer, cancellationToken)) > 0)
            {
                copied += read;
                if (forward)
                {
                    await gate.ReleaseAsync(gate.Position, sink, throttle, cancellationToken);
                }
                else
                {
                    gate.Discard(gate.Position);
                }
            }
        }
        catch (EndOfStreamException)
        {
            // Reported below with the byte count.
        }
        if (copied != entry.Length)
        {
            throw new TarArchiveRejectedException(
                $"member '{name}' is truncated: the archive ends after {copied} of its {entry.Length} bytes", name);
        }
    }

    private async Task FinishAsync(ValidationGate gate, long next, CancellationToken cancellationToken)
    {
        if (!gate.SawEndMarker)
        {
            throw new TarArchiveRejectedException($"the archive ends without an end-of-archive marker after member '{_last}' (truncated?)");
        }
        if (_members == 0)
        {
            throw new TarArchiveRejectedException("the archive has no members");
        }
        await ReleaseTailAsync(gate, next, cancellationToken);
        if (sink is not null)
        {
            await sink.WriteAsync(new byte[2 * TarHeaderBlock.Size], cancellationToken);
        }
        // GNU tar stops at the first zero block; anything but zeros after it would be content nobody validated or sees.
        long offset = next;
        while (true)
        {
            if (gate.PendingFrom(offset).ContainsAnyExcept((byte)0))
            {
                throw new TarArchiveRejectedException($"the archive has data after its end-of-archive marker (after member '{_last}')");
            }
            offset = gate.Position;
            gate.Discard(offset);
            if (await gate.ReadAsync(_buffer, cancellationToken) == 0)
            {
                return;
            }
        }
    }

    private TarArchiveRejectedException Corrupt(ValidationGate gate, Exception e)
    {
        if (e is EndOfStreamException && !gate.SawEndMarker && gate.Position <= gate.HeaderStart)
        {
            return new TarArchiveRejectedException($"the archive ends without an end-of-archive marker after member '{_last}' (truncated?)", null, e);
        }
        if (e is NotSupportedException && gate.MainType == 'S')
        {
            return new TarArchiveRejectedException(
                $"the member after '{_last}' is an old GNU sparse file (type 'S'), which is not accepted; use the pax format", null, e);
        }
        string what = _compression == ArchiveCompression.None ? "archive" : $"{_compression.ToString().ToLowerInvariant()}-compressed archive";
        return new TarArchiveRejectedException($"the {what} is corrupt or truncated after member '{_last}': {e.Message}", null, e);
    }

    private static bool IsFormatError(Exception e) =>
        e is InvalidDataException or EndOfStreamException or FormatException or NotSupportedException or OverflowException or ArgumentException;
}
