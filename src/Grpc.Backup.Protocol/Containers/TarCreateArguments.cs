namespace Grpc.Backup.Protocol.Containers;

/// <summary>The GNU tar command line that archives a view into a POSIX pax stream on stdout (exclusions from <see cref="ExcludePatterns"/>).</summary>
public static class TarCreateArguments
{
    /// <param name="view">The directory to archive (its members are named "./...").</param>
    /// <param name="excludeArguments">From <see cref="ExcludePatterns.ToTarArguments"/>.</param>
    /// <param name="extraOptions">Further tar options, e.g. "--zstd" for a compressed stream.</param>
    public static IReadOnlyList<string> Build(string view, IEnumerable<string> excludeArguments, params IEnumerable<string> extraOptions) =>
    [
        "--create", "--file=-", "--format=pax",
        // atime/ctime records would make every member carry an extended header and every run differ; mtime stays.
        "--pax-option=delete=atime,delete=ctime",
        // Container-view ids, exactly as the user namespace shows them; names would be looked up in the host's passwd.
        "--numeric-owner",
        "--xattrs", "--xattrs-include=*", "--acls", "--sparse",
        // A file the container's root cannot read (a root-only host file bound in) is left out with a warning; it must
        // not fail the backup of everything else. Symlinks are stored as symlinks (no --dereference), never followed.
        "--ignore-failed-read",
        // Sockets cannot be archived and are noise (vzdump silences this too).
        "--warning=no-file-ignored",
        .. extraOptions,
        "--directory=" + view,
        .. excludeArguments,
        // The view's mount tree is exactly the backup (ViewMounts), so "." covers every included volume once and no
        // --one-file-system is needed: it would also stop at the mount points that must be included.
        "--", ".",
    ];
}
