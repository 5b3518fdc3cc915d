using System.Formats.Tar;
using Grpc.Backup.Containers.Internal;

namespace Grpc.Backup.Containers;

/// <summary>
/// Single files from an untrusted container archive, read as a stream without extracting the whole of it: a listing
/// of one directory, or a tar of selected members. Both run the archive checks of a restore
/// (<see cref="TarArchiveValidator"/>) on every member they read and stop reading once what was asked for is complete
/// (GNU tar writes a directory's members together). Extracting selected members into a directory is
/// <see cref="ContainerRestore.RunAsync"/> with <see cref="ContainerRestoreOptions.Paths"/>.
/// </summary>
public static class ArchiveFiles
{
    /// <summary>
    /// The members directly in <paramref name="directory"/> ("/" or "" for the root), sorted by path; or the one member
    /// when it is not a directory.
    /// </summary>
    /// <exception cref="ArchivePathNotFoundException">Nothing in the archive is at or under that path.</exception>
    /// <exception cref="TarArchiveRejectedException">The archive was refused before the listing was complete.</exception>
    public static async Task<IReadOnlyList<ArchiveEntry>> ListAsync(Stream archive, string directory, TarValidationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(archive);
        string path = ArchiveMemberPath.NormalizeRequested(directory);
        var children = new SortedDictionary<string, ArchiveEntry>(StringComparer.Ordinal);
        ArchiveEntry? self = null;
        await TarArchiveValidator.ValidateAsync(archive, options ?? new TarValidationOptions(), sink: null, throttle: null, cancellationToken,
            new MemberSelection([path]), (member, entry) =>
            {
                if (member.Path == path)
                {
                    self = EntryOf(member, entry);
                }
                else if (ArchiveMemberPath.Parent(member.Path) == path)
                {
                    // A later member of the same path replaces the earlier one, as it would on extraction.
                    children[member.Path] = EntryOf(member, entry);
                }
            });
        return self is { Kind: not ArchiveEntryKind.Directory } ? [self] : [.. children.Values];
    }

    /// <summary>
    /// Writes a tar of the selected members (and the trees under them) to <paramref name="output"/>: their own headers
    /// and data as the archive holds them (uncompressed), then an end-of-archive marker. Only checked members are
    /// written; a refusal midway leaves what was written so far, without an end marker.
    /// </summary>
    /// <exception cref="ArchivePathNotFoundException">A path is not in the archive.</exception>
    public static Task<TarValidationReport> WriteTarAsync(Stream archive, IReadOnlyList<string> paths, Stream output, TarValidationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(archive);
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(output);
        var selection = new MemberSelection(paths.Select(ArchiveMemberPath.NormalizeRequested));
        return TarArchiveValidator.ValidateAsync(archive, options ?? new TarValidationOptions(), output, throttle: null, cancellationToken, selection);
    }

    private static ArchiveEntry EntryOf(ScannedMember member, TarEntry entry)
    {
        ArchiveEntryKind kind = entry.EntryType switch
        {
            TarEntryType.Directory => ArchiveEntryKind.Directory,
            TarEntryType.SymbolicLink => ArchiveEntryKind.Symlink,
            TarEntryType.HardLink => ArchiveEntryKind.HardLink,
            TarEntryType.Fifo => ArchiveEntryKind.Fifo,
            TarEntryType.CharacterDevice => ArchiveEntryKind.CharacterDevice,
            TarEntryType.BlockDevice => ArchiveEntryKind.BlockDevice,
            _ => ArchiveEntryKind.File,
        };
        var posix = entry as PosixTarEntry;
        string? link = kind switch
        {
            ArchiveEntryKind.Symlink => entry.LinkName,
            ArchiveEntryKind.HardLink => member.HardLinkTarget,
            _ => null,
        };
        return new ArchiveEntry(member.Path, kind, member.Size, entry.Mode, entry.Uid, entry.Gid,
            string.IsNullOrEmpty(posix?.UserName) ? null : posix.UserName, string.IsNullOrEmpty(posix?.GroupName) ? null : posix.GroupName,
            entry.ModificationTime, link);
    }
}
