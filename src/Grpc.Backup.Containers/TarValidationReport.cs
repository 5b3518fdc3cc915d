namespace Grpc.Backup.Containers;

/// <summary>What validation found in an accepted archive.</summary>
/// <param name="Compression">The compression told by the magic bytes.</param>
/// <param name="MemberCount">Members accepted (metadata headers not counted; skipped members included).</param>
/// <param name="TotalSize">Sum of declared member sizes (apparent sizes for sparse files).</param>
/// <param name="SkippedMembers">Members left out by policy (device nodes), by name.</param>
/// <param name="SetIdMembers">Files kept with setuid or setgid bits, by name.</param>
/// <param name="Warnings">One line per thing worth telling the user.</param>
/// <param name="ReadToEnd">
/// False when a selection of members was complete before the archive's end and the rest was never read (the members
/// after it were not validated; they were not extracted either).
/// </param>
public sealed record TarValidationReport(
    ArchiveCompression Compression,
    long MemberCount,
    long TotalSize,
    IReadOnlyList<string> SkippedMembers,
    IReadOnlyList<string> SetIdMembers,
    IReadOnlyList<string> Warnings,
    bool ReadToEnd = true);
