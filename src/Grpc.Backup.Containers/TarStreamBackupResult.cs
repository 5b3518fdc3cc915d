namespace Grpc.Backup.Containers;

/// <summary>How a finished tar-stream backup went.</summary>
/// <param name="BytesWritten">Bytes of tar stream written to the pipe.</param>
/// <param name="Warnings">
/// Non-fatal problems, one per line: files the container's root cannot read (left out), files that changed while read,
/// the privileged-container warning, cleanup failures. The host logs them as task warnings.
/// </param>
/// <param name="IsPrivileged">The container is privileged and was read as host root (vzdump warns the same way).</param>
/// <param name="Manifest">The view's file manifest when <see cref="ContainerBackupOptions.ComputeFileManifest"/> asked for it and it could be made.</param>
/// <param name="ManifestDuration">How long computing the manifest took.</param>
public sealed record TarStreamBackupResult(long BytesWritten, IReadOnlyList<string> Warnings, bool IsPrivileged, FileManifest? Manifest = null,
    TimeSpan ManifestDuration = default);
