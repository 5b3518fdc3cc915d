namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// A consistent view of the container's files: <see cref="Path"/> as seen inside the holder's mount namespace, the
/// sources to report to the provider, and what went wrong without failing (files the container's root cannot read).
/// </summary>
internal sealed record ContainerView(string Path, IReadOnlyList<string> Sources, IReadOnlyList<string> Warnings);
