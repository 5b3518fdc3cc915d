namespace Grpc.Backup.Nbd;

/// <summary>A metadata context the server agreed to provide, with the id it assigned to it.</summary>
public sealed record NbdMetaContext(string Name, uint Id);
