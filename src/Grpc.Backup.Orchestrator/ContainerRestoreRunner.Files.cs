using Grpc.Backup.Containers;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// Single files from a container archive (<c>grpc-backup files</c>): the provider's ordinary restore source, read as a
/// stream until what was asked for is complete, with the archive checks of a whole restore. Extraction runs as a
/// restore does: into a new directory under a root-only parent, by GNU tar in the target's user namespace.
/// </summary>
public sealed partial class ContainerRestoreRunner
{
    /// <summary>The members directly in <paramref name="directory"/>, or the one member when it is not a directory.</summary>
    /// <exception cref="ArchivePathNotFoundException">The path is not in the archive.</exception>
    public async Task<IReadOnlyList<ArchiveEntry>> ListFilesAsync(string archiveName, string directory, CancellationToken cancellationToken)
    {
        await CheckMechanismAsync(archiveName, cancellationToken);
        return await ReadArchiveAsync(archiveName, (archive, token) => ArchiveFiles.ListAsync(archive, directory, cancellationToken: token),
            cancellationToken);
    }

    /// <summary>
    /// Extracts <see cref="ContainerRestoreOptions.Paths"/> (required) into <see cref="ContainerRestoreOptions.TargetDirectory"/>,
    /// which must not exist and whose parent must be root's with mode 0700. A privileged id map is refused.
    /// </summary>
    public async Task<ContainerRestoreResult> ExtractFilesAsync(string archiveName, ContainerRestoreOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Paths is not { Count: > 0 })
        {
            throw new ArgumentException("name at least one path to extract", nameof(options));
        }
        if (options.IdMap.IsPrivileged)
        {
            throw new ContainerRestoreException($"refusing to extract files of {archiveName} as host root (id map: {options.IdMap}); give an id map");
        }
        await CheckMechanismAsync(archiveName, cancellationToken);
        return await ReadArchiveAsync(archiveName, (archive, token) => ContainerRestore.RunAsync(archive, options, token), cancellationToken);
    }

    /// <summary>Writes a tar of the selected members to <paramref name="output"/> (see <see cref="ArchiveFiles.WriteTarAsync"/>).</summary>
    public async Task<TarValidationReport> WriteFilesTarAsync(string archiveName, IReadOnlyList<string> paths, Stream output, TarValidationOptions options,
        CancellationToken cancellationToken)
    {
        await CheckMechanismAsync(archiveName, cancellationToken);
        return await ReadArchiveAsync(archiveName, (archive, token) => ArchiveFiles.WriteTarAsync(archive, paths, output, options, token),
            cancellationToken);
    }
}
